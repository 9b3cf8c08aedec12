#!/usr/bin/env bash
# Checks deploy/systemd/postback.service with systemd-analyze: verify (any
# message fails, as verify itself exits 0 on many of them) and the offline
# security exposure. It needs systemd's tools, not a running systemd. The
# unit's ExecStart names /usr/local/bin/postback; the check points it at
# the binary just built ($1, default bin/postback), since verify requires
# the executable to exist.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(realpath "${1:-bin/postback}")"
unit=deploy/systemd/postback.service
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd: SKIP: systemd-analyze is not installed (Debian package systemd); $unit is not checked"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Can systemd-analyze run here at all? A unit with nothing to fault.
printf '[Service]\nExecStart=/bin/true\n' >"$tmp/probe.service"
if ! probe="$(systemd-analyze verify "$tmp/probe.service" 2>&1)" || [ -n "$probe" ]; then
  echo "systemd: SKIP: systemd-analyze cannot run in this container, so $unit is not checked:"
  printf '  %s\n' "$probe"
  exit 0
fi
test -x "$bin" || { echo "systemd: $bin is not built (make build)"; exit 1; }
sed "s|/usr/local/bin/postback|$bin|" "$unit" >"$tmp/postback.service"
if ! out="$(systemd-analyze verify "$tmp/postback.service" 2>&1)" || [ -n "$out" ]; then
  echo "systemd: $unit does not verify:"
  printf '  %s\n' "${out//$tmp\//}"
  exit 1
fi
# Exposure is 0 (locked down) to 100; 20 reads as 2.0, "OK" in its words.
if ! systemd-analyze security --offline=yes --threshold=20 "$tmp/postback.service" >"$tmp/security" 2>&1; then
  echo "systemd: $unit: exposure above 2.0:"
  cat "$tmp/security"
  exit 1
fi
echo "systemd: $unit verifies; $(grep -o 'Overall exposure level.*' "$tmp/security" | sed "s|$tmp/||")"
