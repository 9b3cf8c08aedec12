package delivery_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/retry"
)

// verifyNoLeaks checks, after every other cleanup of the test, that no
// goroutine started during the test is left. Call it first, in a test that
// does not run in parallel (others' goroutines would count).
func verifyNoLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		// stacktest does not Close the enqueue Client, whose Redis
		// auto-pipeline keeps its flushers: not the worker's to stop. The
		// API's fasthttp server ends the cleaner of its idle connection
		// workers at its next round, up to 10s after Shutdown.
		goleak.VerifyNone(t, before,
			goleak.IgnoreAnyFunction("github.com/postbackhq/postback/dispatcher.(*autoPipeline).flush"),
			goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
	})
}

// TestWorker_BlockedAddressDeadLettered: with allow_private_networks false
// a partner on 127.0.0.1 is refused at dial time; the delivery goes to the
// DLQ with reason blocked and the partner receives nothing.
func TestWorker_BlockedAddressDeadLettered(t *testing.T) {
	verifyNoLeaks(t)
	p := stacktest.NewPartner(t)
	b := setupWorker(t, fmt.Sprintf(`
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: false}
partners:
  - id: ssrf_blocked
    url: "%s/c?c={click_id}"
`, p.URL), delivery.WorkerConfig{})

	blocked0 := testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues("ssrf_blocked", "blocked"))
	dead0 := testutil.ToFloat64(metrics.Deliveries.WithLabelValues("ssrf_blocked", "dead"))
	id := b.enqueue(t, "evt-ssrf-1", "ssrf_blocked")
	rec := b.stack.WaitStatus(t, id, retry.StatusDead, 10*time.Second)
	require.Equal(t, "blocked", rec.Reason)
	attempts, err := b.stack.Store.Attempts(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, attempts, 1)
	require.Equal(t, "blocked", attempts[0].Outcome)
	require.Contains(t, attempts[0].Error, "127.0.0.1")
	require.Empty(t, p.Requests())
	require.Equal(t, blocked0+1, testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues("ssrf_blocked", "blocked")))
	// Counted just after the dead letter is written, which WaitStatus saw.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(metrics.Deliveries.WithLabelValues("ssrf_blocked", "dead")) == dead0+1
	}, 10*time.Second, 10*time.Millisecond)
	// A blocked address says nothing about the partner's health.
	require.Equal(t, "closed", b.worker.Gate().CircuitState("ssrf_blocked"))
}

// TestWorker_SlowPartnerCutAtTimeout: a partner that starts its answer and
// then trickles its headers a byte at a time is cut at the partner's
// timeout; the attempt is a retried timeout, the next one succeeds, and
// nothing leaks.
func TestWorker_SlowPartnerCutAtTimeout(t *testing.T) {
	verifyNoLeaks(t)
	p := stacktest.NewPartner(t)
	p.Respond = func(n int, w http.ResponseWriter, r *http.Request) {
		if n > 1 {
			_, _ = io.WriteString(w, "ok")
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nX-Slow: ")
		for {
			if err := buf.WriteByte('x'); err != nil {
				return
			}
			if err := buf.Flush(); err != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	b := setupWorker(t, fmt.Sprintf(`
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: true}
partners:
  - id: slowloris
    url: "%s/c?c={click_id}"
    timeout: 300ms
    retry: {initial_interval: 100ms, max_interval: 200ms}
`, p.URL), delivery.WorkerConfig{})

	id := b.enqueue(t, "evt-slow-1", "slowloris")
	rec := b.stack.WaitStatus(t, id, retry.StatusDelivered, 15*time.Second)
	require.Equal(t, 2, rec.Attempts)
	attempts, err := b.stack.Store.Attempts(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, attempts, 2)
	require.Equal(t, "retry", attempts[0].Outcome)
	require.Equal(t, "timeout", attempts[0].Error)
	require.GreaterOrEqual(t, attempts[0].Duration, 300*time.Millisecond)
	require.Equal(t, "delivered", attempts[1].Outcome)
}

// TestWorker_ReloadTurnsGuardBackOn: allow_private_networks is the HTTP
// client's own setting, yet a reload that turns it off applies to the next
// delivery without a restart, and no connection dialled while it was on
// is reused.
func TestWorker_ReloadTurnsGuardBackOn(t *testing.T) {
	verifyNoLeaks(t)
	p := stacktest.NewPartner(t)
	yaml := func(allow bool) string {
		return fmt.Sprintf(`
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: %v}
partners:
  - id: ssrf_reload
    url: "%s/c?c={click_id}"
`, allow, p.URL)
	}
	b := setupWorker(t, yaml(true), delivery.WorkerConfig{})

	first := b.enqueue(t, "evt-reload-1", "ssrf_reload")
	b.stack.WaitStatus(t, first, retry.StatusDelivered, 10*time.Second)
	require.Len(t, p.Requests(), 1)

	b.stack.Live.Store(b.stack.Parse(t, yaml(false)))
	second := b.enqueue(t, "evt-reload-2", "ssrf_reload")
	rec := b.stack.WaitStatus(t, second, retry.StatusDead, 10*time.Second)
	require.Equal(t, "blocked", rec.Reason)
	require.Len(t, p.Requests(), 1, "nothing more reached the private address")

	b.stack.Live.Store(b.stack.Parse(t, yaml(true)))
	third := b.enqueue(t, "evt-reload-3", "ssrf_reload")
	b.stack.WaitStatus(t, third, retry.StatusDelivered, 10*time.Second)
	require.Len(t, p.Requests(), 2)
}
