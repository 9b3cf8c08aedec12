#!/usr/bin/env bash
# The quick start: a demo partner (postback sink) and postback serve on an
# embedded Redis with examples/postback.yaml. Ctrl-C stops both.
set -euo pipefail
BIN=${1:-bin/postback}
API=127.0.0.1:${POSTBACK_DEMO_PORT:-8080}
SINK=127.0.0.1:9090
export POSTBACK_API_KEY=${POSTBACK_API_KEY:-demo-key-change-me-0123456789}
mkdir -p .run
"$BIN" sink --listen "$SINK" > .run/sink.log 2>&1 &
SINK_PID=$!
"$BIN" --config examples/postback.yaml --log-format text serve --embedded-redis --listen "$API" &
SERVE_PID=$!
stop() {
  kill -TERM "$SERVE_PID" "$SINK_PID" 2>/dev/null || true
  wait "$SERVE_PID" "$SINK_PID" 2>/dev/null || true
  echo "postback and the demo partner stopped."
}
trap stop INT TERM EXIT
for _ in $(seq 50); do
  curl -fs "http://$API/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVE_PID" 2>/dev/null || { echo "postback serve failed to start"; exit 1; }
  sleep 0.1
done
cat <<MSG

  postback is running: API on http://$API, demo partner on http://$SINK.

  Send a sample purchase (goes to two partners):
    curl -s -H 'Authorization: Bearer $POSTBACK_API_KEY' -H 'Content-Type: application/json' \\
         -d @examples/purchase.json http://$API/v1/events

  Watch the partner receive it:   tail -f .run/sink.log
  Look at one delivery:           curl -s -H 'Authorization: Bearer $POSTBACK_API_KEY' http://$API/v1/deliveries/<id>
  Ops, from another shell:        $BIN -c examples/postback.yaml stats -o table
                                  $BIN -c examples/postback.yaml dlq list -o table
  Try a template before it goes live:
                                  $BIN -c examples/postback.yaml partners render -p acme_ads -e examples/purchase.json

  Ctrl-C stops everything.

MSG
wait "$SERVE_PID"
