package delivery_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/retry"
)

// TestWorker_Metrics checks the series a worker feeds: attempts by
// outcome, attempt duration, deliveries by result, enqueue-to-delivery
// latency, and the DLQ size and queue pending gauges it refreshes. Not
// parallel: postback_queue_pending is one process-wide gauge.
func TestWorker_Metrics(t *testing.T) {
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("c") {
		case "clk-evt-m-bad":
			w.WriteHeader(http.StatusBadRequest)
		case "clk-evt-m-later":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}
	b := setupWorker(t, fmt.Sprintf(`
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: true}
partners:
  - id: metered
    url: "%s/c?c={click_id}"
    retry: {initial_interval: 1h, max_interval: 1h}
`, p.URL), delivery.WorkerConfig{StatsInterval: 50 * time.Millisecond})

	const partner = "metered"
	delivered0 := testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues(partner, "delivered"))
	rejected0 := testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues(partner, "rejected"))
	retry0 := testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues(partner, "retry"))
	dead0 := testutil.ToFloat64(metrics.Deliveries.WithLabelValues(partner, "dead"))
	done0 := testutil.ToFloat64(metrics.Deliveries.WithLabelValues(partner, "delivered"))

	ok := b.enqueue(t, "evt-m-ok", partner)
	bad := b.enqueue(t, "evt-m-bad", partner)
	later := b.enqueue(t, "evt-m-later", partner)
	b.stack.WaitStatus(t, ok, retry.StatusDelivered, 10*time.Second)
	b.stack.WaitStatus(t, bad, retry.StatusDead, 10*time.Second)
	b.stack.WaitStatus(t, later, retry.StatusRetrying, 10*time.Second)

	// The worker counts an attempt just after it records the attempt's
	// status, which is what WaitStatus saw: wait for the counters too.
	counts := func() []float64 {
		return []float64{
			testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues(partner, "delivered")),
			testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues(partner, "rejected")),
			testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues(partner, "retry")),
			testutil.ToFloat64(metrics.Deliveries.WithLabelValues(partner, "dead")),
			testutil.ToFloat64(metrics.Deliveries.WithLabelValues(partner, "delivered")),
		}
	}
	want := []float64{delivered0 + 1, rejected0 + 1, retry0 + 1, dead0 + 1, done0 + 1}
	require.Eventually(t, func() bool { return slices.Equal(counts(), want) }, 10*time.Second, 10*time.Millisecond)

	// The refresher sees the dead letter and the scheduled retry.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(metrics.DLQSize.WithLabelValues(partner)) == 1 &&
			testutil.ToFloat64(metrics.QueuePending) == 1
	}, 10*time.Second, 20*time.Millisecond)

	// /metrics shows every series the worker feeds, with histograms.
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`postback_delivery_attempts_total{outcome="delivered",partner="metered"}`,
		`postback_delivery_attempt_duration_seconds_count{partner="metered"}`,
		`postback_deliveries_total{partner="metered",result="dead"}`,
		`postback_enqueue_to_delivery_seconds_count{partner="metered"}`,
		`postback_dlq_size{partner="metered"} 1`,
		`postback_queue_pending 1`,
		`postback_partner_circuit_open{partner="metered"} 0`,
	} {
		require.Contains(t, body, want)
	}
}

// TestWorker_LogsRedacted: one line per attempt with delivery, partner,
// attempt, outcome and duration, and no device id, email, IP, click id or
// secret from the URL, headers, body or the partner's redirect.
func TestWorker_LogsRedacted(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	p.Respond = func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		// A partner echoing our query in its redirect.
		http.Redirect(w, r, "https://elsewhere.example/c?"+r.URL.RawQuery, http.StatusFound)
	}
	b := setupWorkerEnv(t, fmt.Sprintf(`
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: true}
partners:
  - id: private_data
    method: POST
    url: "%s/c?idfa={idfa}&ip={ip}&email={email}&c={click_id}"
    headers: {X-Token: "${env:TOKEN}"}
    body: '{"email":"{email}","ip":"{ip}"}'
    content_type: application/json
    retry: {initial_interval: 100ms, max_interval: 200ms}
`, p.URL), map[string]string{"TOKEN": "tok-SECRET-4242"}, delivery.WorkerConfig{})

	granted := true
	ev := &event.Event{ID: "evt-pii", Name: "purchase", Timestamp: time.Now().UTC(), ClickID: "clk-PRIVATE-77"}
	ev.Attribution.Partner = "private_data"
	ev.Device.IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
	ev.Device.IP = "203.0.113.77"
	ev.User.Email = "alice.private@example.com"
	ev.Consent.Granted = &granted
	rc, err := b.stack.Client.Enqueue(context.Background(), ev)
	require.NoError(t, err)
	id := rc.Deliveries[0].ID
	rec := b.stack.WaitStatus(t, id, retry.StatusDead, 10*time.Second)
	require.Equal(t, "rejected", rec.Reason)
	require.Len(t, p.Requests(), 2)
	require.Contains(t, p.Requests()[0].URL, "alice.private", "the partner does get the data")

	logs := b.logs.String()
	for _, secret := range []string{
		"6D92078A", "203.0.113.77", "alice.private", "alice.private%40example.com", "clk-PRIVATE", "tok-SECRET",
	} {
		require.NotContains(t, logs, secret)
	}
	var attemptLines int
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "delivery="+id) || !strings.Contains(line, "attempt=") {
			continue
		}
		attemptLines++
		for _, field := range []string{"partner=private_data", "outcome=", "duration_ms=", "host=127.0.0.1:"} {
			require.Contains(t, line, field)
		}
	}
	require.Equal(t, 2, attemptLines, "one line per attempt:\n%s", logs)
	require.Contains(t, logs, "https://elsewhere.example/c?idfa=***&ip=***&email=***&c=***")
}

// TestWorker_Start_warnsNonDurableRedis: the worker warns at start when
// Redis runs without AOF or with an evicting maxmemory-policy.
func TestWorker_Start_warnsNonDurableRedis(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server: the embedded fallback has no CONFIG")
	}
	cfg, err := config.Parse("test.yaml", []byte("api: {keys: [k-0123456789abcdef]}\npartners: []\n"), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	start := func(args ...string) string {
		srv := redistest.Own(t, redistest.Options{Args: args})
		rdb, err := store.OpenRedis(srv.URL(0))
		require.NoError(t, err)
		defer rdb.Close()
		logs := &syncBuffer{}
		w, err := delivery.NewWorker(delivery.WorkerConfig{
			Redis: rdb, Config: config.NewLive(cfg), ShutdownTimeout: time.Second,
			Logger: slog.New(slog.NewTextHandler(logs, nil)),
		})
		require.NoError(t, err)
		require.NoError(t, w.Start())
		w.Shutdown()
		return logs.String()
	}

	logs := start() // redistest's default: appendonly no, noeviction
	require.Contains(t, logs, `level=WARN msg="Redis appendonly is \"no\"`)
	require.NotContains(t, logs, "maxmemory-policy is")

	logs = start("--appendonly", "yes", "--maxmemory-policy", "allkeys-lru")
	require.NotContains(t, logs, "appendonly is")
	require.Contains(t, logs, `maxmemory-policy is \"allkeys-lru\"`)

	logs = start("--appendonly", "yes", "--maxmemory-policy", "noeviction")
	require.NotContains(t, logs, "level=WARN")

	// CONFIG renamed away, as managed Redis often does: a reminder, no failure.
	logs = start("--rename-command", "CONFIG", "")
	require.Contains(t, logs, "could not read Redis persistence settings")
}
