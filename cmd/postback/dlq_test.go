package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/retry"
)

// opsYAML has one partner, p1, that the ops tests make fail; PARTNER is its
// base URL and PATH the path its template sends to.
const opsYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: p1
    match: all
    url: "PARTNER/PATH?e={event_id}"
    retry: {max_attempts: 3, initial_interval: 100ms, max_interval: 500ms, multiplier: 2}
`

type opsBundle struct {
	stack   *stacktest.Stack
	partner *stacktest.Partner
	ok      *atomic.Bool // the partner answers 200 when set, else 400
	cfg     string       // config file path
	url     string       // Redis URL
}

func setupOps(t *testing.T) opsBundle {
	t.Helper()
	ok := &atomic.Bool{}
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		if ok.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("unknown click"))
	}
	yaml := strings.NewReplacer("PARTNER", p.URL, "PATH", "c").Replace(opsYAML)
	url := redistest.DB(t)
	s := stacktest.New(t, yaml, stacktest.Options{RedisURL: url})
	cfg := partnersFile(t, "postback.yaml", strings.ReplaceAll(yaml, "${api_key}", stacktest.APIKey))
	return opsBundle{stack: s, partner: p, ok: ok, cfg: cfg, url: url}
}

// run runs the CLI against the bundle's config and Redis.
func (b opsBundle) run(t *testing.T, args ...string) cliResult {
	t.Helper()
	return partnersRun(t, append([]string{"-c", b.cfg, "--redis-url", b.url, "--log-level", "warn"}, args...)...)
}

func (b opsBundle) deadLetters(t *testing.T, n int) []string {
	t.Helper()
	ids := b.stack.EnqueueMany(t, "evt", "install", n)
	b.stack.WaitDLQSize(t, "p1", int64(n), 30*time.Second)
	return ids
}

func TestDLQList_TableAndJSON(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	ids := b.deadLetters(t, 3)

	r := b.run(t, "dlq", "list", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	require.Len(t, list, 3)
	for _, dl := range list {
		require.Contains(t, ids, dl["id"])
		require.Equal(t, "p1", dl["partner"])
		require.Equal(t, "dead", dl["status"])
		require.Equal(t, "rejected", dl["reason"])
		require.EqualValues(t, 1, dl["attempts"])
		require.EqualValues(t, 400, dl["last_status"])
		require.Equal(t, "HTTP 400", dl["last_error"])
		require.Contains(t, dl["url"], "/c?e=evt-")
		require.NotEmpty(t, dl["first_attempt_at"])
		require.NotEmpty(t, dl["last_attempt_at"])
		require.NotEmpty(t, dl["dead_at"])
		require.Equal(t, "install", dl["event"].(map[string]any)["name"])
	}

	r = b.run(t, "dlq", "list", "-o", "table", "--limit", "2")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^ID\s+PARTNER\s+REASON\s+STATUS\s+ATTEMPTS\s+DIED\s+LAST ERROR$`, lines[0])
	require.Regexp(t, `^dlv_[0-9a-f]{32}\s+p1\s+rejected\s+400\s+1\s+\S+Z\s+HTTP 400$`, lines[1])

	r = b.run(t, "dlq", "list", "-o", "json", "--reason", "exhausted")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "[]\n", r.stdout)
	r = b.run(t, "dlq", "list", "--reason", "typo")
	require.Equal(t, 2, r.code)
}

func TestDLQShow_TableAndJSON(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	id := b.deadLetters(t, 1)[0]

	r := b.run(t, "dlq", "show", "-o", "json", id)
	require.Equal(t, 0, r.code, r.stderr)
	var dl map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &dl))
	require.Equal(t, id, dl["id"])
	require.Equal(t, "rejected", dl["reason"])
	require.Equal(t, "evt-0", dl["event"].(map[string]any)["id"])
	log := dl["attempt_log"].([]any)
	require.Len(t, log, 1)
	require.Equal(t, dl["attempts_history"], dl["attempt_log"], "the history under its name and its former one")
	a := log[0].(map[string]any)
	require.EqualValues(t, 1, a["n"])
	require.EqualValues(t, 400, a["status"])
	require.Equal(t, "rejected", a["outcome"])
	require.Equal(t, "unknown click", a["response"])
	require.Contains(t, a["url"], "/c?e=evt-0")

	r = b.run(t, "dlq", "show", "-o", "table", id)
	require.Equal(t, 0, r.code, r.stderr)
	for _, want := range []string{
		"id:", id, "partner:", "p1", "status:", "dead", "reason:", "rejected", "attempts:",
		"first attempt:", "last attempt:", "last status:", "400", "last error:", "HTTP 400",
		"last url:", "/c?e=evt-0", "dead since:", "event:", `"name": "install"`,
		"attempts (1):", "OUTCOME", "response to #1: unknown click",
	} {
		require.Contains(t, r.stdout, want)
	}

	r = b.run(t, "dlq", "show", "dlv_nope")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "dlv_nope is not in a dead-letter queue")
}

func TestDeliveriesShow_TableAndJSON(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	b.ok.Store(true)
	rc, err := b.stack.Client.Enqueue(context.Background(), eventOf("evt-ok"))
	require.NoError(t, err)
	id := rc.Deliveries[0].ID
	b.stack.WaitStatus(t, id, retry.StatusDelivered, 10*time.Second)

	r := b.run(t, "deliveries", "show", "-o", "json", id)
	require.Equal(t, 0, r.code, r.stderr)
	var d map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d))
	require.Equal(t, "delivered", d["status"])
	require.EqualValues(t, 1, d["attempts"])
	require.Len(t, d["attempt_log"], 1)
	require.Equal(t, d["attempts_history"], d["attempt_log"], "the history under its name and its former one")
	require.Equal(t, "delivered", d["attempt_log"].([]any)[0].(map[string]any)["outcome"])

	r = b.run(t, "deliveries", "show", "-o", "table", id)
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `status:\s+delivered`, r.stdout)
	require.Contains(t, r.stdout, "attempts (1):")
	require.Regexp(t, `\n\s+1\s+\S+Z\s+\S+\s+200\s+delivered\s+`, r.stdout)

	r = b.run(t, "deliveries", "show", "dlv_unknown")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no delivery dlv_unknown")
}

func TestStats_TableAndJSON(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	b.deadLetters(t, 2)
	b.ok.Store(true)
	rc, err := b.stack.Client.Enqueue(context.Background(), eventOf("evt-ok"))
	require.NoError(t, err)
	b.stack.WaitStatus(t, rc.Deliveries[0].ID, retry.StatusDelivered, 10*time.Second)

	r := b.run(t, "stats", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var st struct {
		Partners []map[string]any `json:"partners"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	require.Len(t, st.Partners, 1)
	p := st.Partners[0]
	require.Equal(t, "p1", p["partner"])
	require.EqualValues(t, 0, p["pending"])
	require.EqualValues(t, 0, p["scheduled"])
	require.EqualValues(t, 0, p["in_flight"])
	require.EqualValues(t, 0, p["held"])
	require.EqualValues(t, 0, p["skipped_1h"])
	require.EqualValues(t, 1, p["delivered_1h"])
	require.EqualValues(t, 2, p["dead_1h"])
	require.EqualValues(t, 3, p["attempts_1h"])
	require.EqualValues(t, 0, p["duplicate_1h"])
	require.InDelta(t, 1.0/3, p["success_rate"], 1e-9)
	require.Greater(t, p["latency_p50_ms"], 0.0)
	require.GreaterOrEqual(t, p["latency_p99_ms"], p["latency_p50_ms"])
	require.EqualValues(t, 2, p["dlq_size"])
	require.Contains(t, p, "oldest_pending_age_s")
	require.Nil(t, p["oldest_pending_age_s"])

	r = b.run(t, "stats", "--partner", "p1", "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, []string{"PARTNER", "PENDING", "HELD", "SCHEDULED", "IN", "FLIGHT", "DELIVERED", "1H", "DUPLICATE", "1H", "DEAD", "1H",
		"SKIPPED", "1H", "SUCCESS", "P50", "P99", "DLQ", "OLDEST", "PENDING", "PAUSED"}, strings.Fields(lines[0]))
	f := strings.Fields(lines[1])
	require.Equal(t, []string{"p1", "0", "0", "0", "0", "1", "0", "2", "0", "33.3%"}, f[:10])
	require.Regexp(t, `ms$`, f[10])
	require.Equal(t, []string{"2", "-", "-"}, f[12:])
}

func TestDLQRetry_FixedTemplateAndDryRun(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	ids := b.deadLetters(t, 2)

	// Ops fix the template file: the partner wanted /fixed.
	yaml := strings.NewReplacer("PARTNER", b.partner.URL, "PATH", "fixed", "${api_key}", stacktest.APIKey).Replace(opsYAML)
	b.cfg = partnersFile(t, "postback.yaml", yaml)
	b.ok.Store(true)

	r := b.run(t, "dlq", "retry", "--partner", "p1", "--dry-run", "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "would_send")
	require.Contains(t, r.stdout, "GET "+b.partner.URL+"/fixed?e=evt-")
	require.Contains(t, r.stdout, "dry run: 2 selected, 2 would be sent, 0 fail to render with the current template; nothing changed")
	require.Len(t, b.partner.Requests(), 2, "a dry run sends nothing")

	// The worker renders at delivery time from ITS config: reload it too.
	require.NoError(t, reloadStack(b, yaml))
	r = b.run(t, "dlq", "retry", "-o", "json", ids[0], ids[1])
	require.Equal(t, 0, r.code, r.stderr)
	var out struct {
		DryRun bool           `json:"dry_run"`
		Result map[string]int `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.False(t, out.DryRun)
	require.Equal(t, 2, out.Result["enqueued"])
	require.Equal(t, 2, out.Result["removed"])
	for _, id := range ids {
		rec := b.stack.WaitStatus(t, id, retry.StatusDelivered, 10*time.Second)
		require.Contains(t, rec.URL, "/fixed?e=evt-")
	}
	for _, req := range b.partner.Requests()[2:] {
		require.True(t, strings.HasPrefix(req.URL, "/fixed?e=evt-"), req.URL)
	}
}

func TestDLQPurgeAndExport(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	ids := b.deadLetters(t, 3)

	r := b.run(t, "dlq", "export", "--partner", "p1")
	require.Equal(t, 0, r.code, r.stderr)
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var dl map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &dl), sc.Text())
		require.Contains(t, ids, dl["id"])
		require.Equal(t, "rejected", dl["reason"])
		require.NotNil(t, dl["event"])
		require.Len(t, dl["attempt_log"], 1)
		n++
	}
	require.Equal(t, 3, n)

	r = b.run(t, "dlq", "purge", "--partner", "p1")
	require.Equal(t, 2, r.code, "a scope without --yes is refused")
	require.Contains(t, r.stderr, "--yes")
	r = b.run(t, "dlq", "purge")
	require.Equal(t, 2, r.code)

	r = b.run(t, "dlq", "purge", ids[0])
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "purged 1 dead letter(s)\n", r.stdout)
	r = b.run(t, "dlq", "purge", "--partner", "p1", "--older-than", "1h", "--yes")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "purged 0 dead letter(s)\n", r.stdout)
	r = b.run(t, "dlq", "purge", "--all", "--yes")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "purged 2 dead letter(s)\n", r.stdout)
	r = b.run(t, "dlq", "export")
	require.Equal(t, 0, r.code, r.stderr)
	require.Empty(t, r.stdout)
}

func eventOf(id string) *event.Event { return &event.Event{ID: id, Name: "install"} }

// reloadStack puts yaml in force in the running stack, as SIGHUP would.
func reloadStack(b opsBundle, yaml string) error {
	cfg, err := config.Parse("postback.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		return err
	}
	b.stack.Live.Store(cfg)
	return nil
}

// 12,000 deliveries to a partner that answers 400 all sit in its DLQ (asynq's
// own archive would have kept 9,999); once the partner recovers,
// `dlq retry --partner` delivers every one and empties the DLQ.
func TestDLQRetry_TwelveThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("12,000 deliveries")
	}
	t.Parallel()
	const n = 12_000
	b := setupOps(t)

	start := time.Now()
	ids := b.stack.EnqueueMany(t, "evt", "install", n)
	require.Len(t, ids, n)
	enqueued := time.Since(start)
	b.stack.WaitDLQSize(t, "p1", n, 5*time.Minute)
	dead := time.Since(start)
	_, _, _, _, archived := b.stack.QueueSizes(t)
	require.Zero(t, archived, "asynq archives nothing")

	b.ok.Store(true)
	start = time.Now()
	r := b.run(t, "dlq", "retry", "--partner", "p1", "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "12000 selected, 12000 re-enqueued, 12000 left the DLQ, 0 failed, 0 already gone\n", r.stdout)
	replayed := time.Since(start)
	b.stack.WaitQueuesEmpty(t, 5*time.Minute)
	b.stack.WaitDLQSize(t, "p1", 0, time.Second)
	delivered := time.Since(start)

	seen := map[string]bool{}
	for _, req := range b.partner.Requests() {
		seen[req.Header.Get("Idempotency-Key")] = true
	}
	require.Len(t, seen, n)
	for _, id := range []string{ids[0], ids[n/2], ids[n-1]} {
		rec, err := b.stack.Store.Get(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, retry.StatusDelivered, rec.Status)
	}
	t.Logf("12,000: enqueue %v, all dead-lettered %v after start; dlq retry %v, all delivered %v after it",
		enqueued.Round(time.Millisecond), dead.Round(time.Millisecond), replayed.Round(time.Millisecond), delivered.Round(time.Millisecond))
}

// A partner id that is not in the config, and negative bounds, are
// mistakes the user must hear of: before, they selected nothing and
// exited 0 with zeros.
func TestOps_UnknownPartnerAndNegativeBounds(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"stats", "-p", "nonexistent"}, 1, `partner "nonexistent" is not in`},
		{[]string{"dlq", "retry", "-p", "nonexistent"}, 1, `partner "nonexistent" is not in`},
		{[]string{"dlq", "list", "--since", "-1h"}, 2, "--since must not be negative"},
		{[]string{"dlq", "list", "--limit", "-5"}, 2, "--limit must not be negative"},
		{[]string{"dlq", "retry", "--all", "--since", "-2h"}, 2, "--since must not be negative"},
		{[]string{"dlq", "retry", "--all", "--rate", "-1"}, 2, "--rate must not be negative"},
	} {
		r := b.run(t, tc.args...)
		require.Equal(t, tc.code, r.code, "%v: %s", tc.args, r.stderr)
		require.Contains(t, r.stderr, tc.msg, "%v", tc.args)
	}
	require.Zero(t, b.run(t, "stats", "-p", "p1").code, "a partner in the config")
}
