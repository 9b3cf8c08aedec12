package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
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

// isoBundle is a running postback whose worker the test configured itself
// (stacktest's worker has no isolation knobs), and what the worker logged.
type isoBundle struct {
	stack  *stacktest.Stack
	worker *delivery.Worker
	logs   *syncBuffer
}

// setupWorker starts a stack on yamlConfig with a worker built from wc
// (Redis, Config and Logger are filled in).
func setupWorker(t *testing.T, yamlConfig string, wc delivery.WorkerConfig) *isoBundle {
	t.Helper()
	return setupWorkerEnv(t, yamlConfig, nil, wc)
}

// setupWorkerEnv is setupWorker with env resolving ${env:NAME} in the config.
func setupWorkerEnv(t *testing.T, yamlConfig string, env map[string]string, wc delivery.WorkerConfig) *isoBundle {
	t.Helper()
	s := stacktest.New(t, yamlConfig, stacktest.Options{NoWorker: true, Env: env})
	logs := &syncBuffer{}
	wc.Redis, wc.Config = s.Redis, s.Live
	wc.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wc.PollInterval = 10 * time.Millisecond
	wc.ScheduleInterval = 100 * time.Millisecond
	wc.ShutdownTimeout = 5 * time.Second
	w, err := delivery.NewWorker(wc)
	require.NoError(t, err)
	require.NoError(t, w.Start())
	t.Cleanup(w.Shutdown)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker logs:\n%s", logs.String())
		}
	})
	return &isoBundle{stack: s, worker: w, logs: logs}
}

// enqueue enqueues event id for partner and returns the delivery id.
func (b *isoBundle) enqueue(t *testing.T, id, partner string) string {
	t.Helper()
	ev := &event.Event{ID: id, Name: "purchase", Timestamp: time.Now().UTC(), ClickID: "clk-" + id}
	ev.Attribution.Partner = partner
	rc, err := b.stack.Client.Enqueue(context.Background(), ev)
	require.NoError(t, err)
	require.Len(t, rc.Deliveries, 1)
	return rc.Deliveries[0].ID
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWorker_PartnerIsolation is the acceptance test: partner A
// hangs with a concurrency cap of 2, and every delivery to partner B
// completes while A's are still in flight, although A's deliveries
// outnumber the worker's slots.
func TestWorker_PartnerIsolation(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	var inFlightA, maxInFlightA atomic.Int32
	a := stacktest.NewPartner(t)
	a.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		n := inFlightA.Add(1)
		defer inFlightA.Add(-1)
		for m := maxInFlightA.Load(); n > m && !maxInFlightA.CompareAndSwap(m, n); m = maxInFlightA.Load() {
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}
	bp := stacktest.NewPartner(t)

	b := setupWorker(t, fmt.Sprintf(`
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: true}
partners:
  - id: iso_a
    url: "%s/a?c={click_id}"
    concurrency: 2
    timeout: 30s
  - id: iso_b
    url: "%s/b?c={click_id}"
    concurrency: 2
`, a.URL, bp.URL), delivery.WorkerConfig{Concurrency: 4, Isolation: delivery.GateConfig{BusyDelay: 200 * time.Millisecond}})
	// Registered last, so it runs first: the worker's shutdown and the
	// partner's Close would otherwise wait for the hanging requests.
	t.Cleanup(func() { close(hang) })

	var aIDs []string
	for i := range 12 {
		aIDs = append(aIDs, b.enqueue(t, fmt.Sprintf("evt-a-%d", i), "iso_a"))
	}
	a.WaitRequests(t, 2, 10*time.Second)
	var bIDs []string
	for i := range 12 {
		bIDs = append(bIDs, b.enqueue(t, fmt.Sprintf("evt-b-%d", i), "iso_b"))
	}
	for _, id := range bIDs {
		b.stack.WaitStatus(t, id, retry.StatusDelivered, 20*time.Second)
	}

	// A is still hanging: nothing of it finished, never more than its cap
	// in flight, and the deliveries held back spent no attempt.
	require.Len(t, bp.Requests(), 12)
	require.Len(t, a.Requests(), 2)
	require.EqualValues(t, 2, maxInFlightA.Load())
	for _, id := range aIDs {
		rec, err := b.stack.Store.Get(context.Background(), id)
		if errors.Is(err, store.ErrNotFound) {
			continue // no record before the first attempt ends
		}
		require.NoError(t, err)
		require.False(t, rec.Status.Final(), id)
		require.Zero(t, rec.Attempts, id)
	}
	require.Positive(t, testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues("iso_a", "deferred")))
}

func newGate(t *testing.T, rdb redis.UniversalClient, gc delivery.GateConfig) *delivery.Gate {
	t.Helper()
	gc.Redis = rdb
	gc.Logger = slog.New(slog.DiscardHandler)
	g, err := delivery.NewGate(gc)
	require.NoError(t, err)
	return g
}

func openRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// requireDeferred checks err is a deferral for cause with a positive delay.
func requireDeferred(t *testing.T, err error, cause error) time.Duration {
	t.Helper()
	require.ErrorIs(t, err, cause)
	d, deferral, ok := retry.DelayOf(err)
	require.True(t, ok, "a retry.DelayError: %v", err)
	require.True(t, deferral, "a deferral spends no attempt: %v", err)
	require.Positive(t, d)
	return d
}

func TestGate_Acquire_rateLimitSharedByWorkers(t *testing.T) {
	t.Parallel()
	rdb := openRedis(t)
	// Two gates on one Redis stand for two worker processes.
	g1, g2 := newGate(t, rdb, delivery.GateConfig{}), newGate(t, rdb, delivery.GateConfig{})
	p := &config.Partner{ID: "rl_shared", RateLimit: config.RateLimit{Requests: 3, Per: time.Hour}}

	ctx := context.Background()
	var allowed int
	for i := range 8 {
		g := g1
		if i%2 == 1 {
			g = g2
		}
		done, err := g.Acquire(ctx, p)
		if err != nil {
			d := requireDeferred(t, err, delivery.ErrRateLimited)
			require.Greater(t, d, time.Minute, "the next token is ~20m away")
			continue
		}
		done(retry.Result{StatusCode: 200})
		allowed++
	}
	require.Equal(t, 3, allowed, "3/h across both workers")

	// Another partner has its own budget.
	done, err := g2.Acquire(ctx, &config.Partner{ID: "rl_other", RateLimit: p.RateLimit})
	require.NoError(t, err)
	done(retry.Result{StatusCode: 200})
}

func TestGate_Acquire_concurrencyCap(t *testing.T) {
	t.Parallel()
	g := newGate(t, openRedis(t), delivery.GateConfig{BusyDelay: time.Second})
	p := &config.Partner{ID: "cap", Concurrency: 2}
	ctx := context.Background()

	d1, err := g.Acquire(ctx, p)
	require.NoError(t, err)
	d2, err := g.Acquire(ctx, p)
	require.NoError(t, err)
	_, err = g.Acquire(ctx, p)
	d := requireDeferred(t, err, delivery.ErrPartnerBusy)
	require.GreaterOrEqual(t, d, time.Second)

	d1(retry.Result{StatusCode: 200})
	d1(retry.Result{StatusCode: 200}) // a second call frees nothing more
	d3, err := g.Acquire(ctx, p)
	require.NoError(t, err)
	_, err = g.Acquire(ctx, p)
	requireDeferred(t, err, delivery.ErrPartnerBusy)

	// A reload that raises the cap applies to the next delivery.
	raised := &config.Partner{ID: "cap", Concurrency: 3}
	var dones []func(retry.Result)
	for range 3 {
		done, err := g.Acquire(ctx, raised)
		require.NoError(t, err)
		dones = append(dones, done)
	}
	_, err = g.Acquire(ctx, raised)
	requireDeferred(t, err, delivery.ErrPartnerBusy)
	for _, done := range append(dones, d2, d3) {
		done(retry.Result{StatusCode: 200})
	}

	// No cap: no limit.
	free := &config.Partner{ID: "nocap"}
	for range 50 {
		_, err := g.Acquire(ctx, free)
		require.NoError(t, err)
	}
}

func TestGate_Acquire_circuitBreaker(t *testing.T) {
	t.Parallel()
	g := newGate(t, openRedis(t), delivery.GateConfig{BreakerFailures: 3, BreakerOpenFor: 200 * time.Millisecond})
	p := &config.Partner{ID: "cb_partner"}
	ctx := context.Background()
	send := func(r retry.Result) {
		t.Helper()
		done, err := g.Acquire(ctx, p)
		require.NoError(t, err)
		done(r)
	}

	// Answers from a live partner, a blocked address and our own
	// cancellation do not count; a success resets the run of failures.
	send(retry.Result{StatusCode: 503})
	send(retry.Result{StatusCode: 503})
	send(retry.Result{StatusCode: 200})
	send(retry.Result{StatusCode: 404})
	send(retry.Result{StatusCode: 429})
	send(retry.Result{Err: context.Canceled})
	send(retry.Result{Err: blockedErr{}})
	require.Equal(t, "closed", g.CircuitState(p.ID))

	// Timeouts, transport errors and 5xx in a row open it.
	send(retry.Result{Err: context.DeadlineExceeded})
	send(retry.Result{Err: errors.New("connection refused")})
	send(retry.Result{StatusCode: 502})
	require.Equal(t, "open", g.CircuitState(p.ID))
	require.Equal(t, 1.0, testutil.ToFloat64(metrics.CircuitOpen.WithLabelValues(p.ID)))
	_, err := g.Acquire(ctx, p)
	d := requireDeferred(t, err, delivery.ErrCircuitOpen)
	require.LessOrEqual(t, d, 200*time.Millisecond*3/2+time.Millisecond, "until it may half-open, with jitter")

	// After BreakerOpenFor one probe goes through; others wait for it.
	var probe func(retry.Result)
	require.Eventually(t, func() bool {
		probe, err = g.Acquire(ctx, p)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, "half-open", g.CircuitState(p.ID))
	require.Equal(t, 0.0, testutil.ToFloat64(metrics.CircuitOpen.WithLabelValues(p.ID)))
	_, err = g.Acquire(ctx, p)
	requireDeferred(t, err, delivery.ErrPartnerBusy)
	probe(retry.Result{StatusCode: 204})
	require.Equal(t, "closed", g.CircuitState(p.ID))
	send(retry.Result{StatusCode: 200})
}

type blockedErr struct{}

func (blockedErr) Error() string { return "address 10.0.0.1 blocked" }
func (blockedErr) Blocked() bool { return true }

// TestHandler_ProcessTask_deferralBoundByMaxAge: a delivery held back by the
// rate limit past its max_age is dead-lettered as exhausted, having spent
// no attempt.
func TestHandler_ProcessTask_deferralBoundByMaxAge(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	b := setupWorker(t, fmt.Sprintf(`
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: true}
partners:
  - id: maxage_rl
    url: "%s/c?c={click_id}"
    rate_limit: 1/h
    retry: {max_age: 1m}
`, p.URL), delivery.WorkerConfig{})

	first := b.enqueue(t, "evt-ma-1", "maxage_rl")
	b.stack.WaitStatus(t, first, retry.StatusDelivered, 10*time.Second)
	second := b.enqueue(t, "evt-ma-2", "maxage_rl")
	rec := b.stack.WaitStatus(t, second, retry.StatusDead, 10*time.Second)
	require.Equal(t, "exhausted", rec.Reason)
	require.Zero(t, rec.Attempts)
	require.Contains(t, rec.LastError, "max_age reached while deferred", "the DLQ says why, not only the log")
	require.Contains(t, rec.LastError, "rate limit")
	require.Len(t, p.Requests(), 1)
	require.Contains(t, b.logs.String(), "max_age reached while deferred")
	require.True(t, strings.Contains(b.logs.String(), "partner rate limit reached"))
}

// BenchmarkGate_Acquire measures the isolation cost per send: local only
// (cap and breaker) and with the shared rate limit (one Redis script call).
func BenchmarkGate_Acquire(b *testing.B) {
	rdb, err := store.OpenRedis(redistest.DB(b))
	require.NoError(b, err)
	b.Cleanup(func() { _ = rdb.Close() })
	g, err := delivery.NewGate(delivery.GateConfig{Redis: rdb, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	ctx := context.Background()
	for _, p := range []*config.Partner{
		{ID: "bench_local", Concurrency: 1 << 20},
		{ID: "bench_rate", Concurrency: 1 << 20, RateLimit: config.RateLimit{Requests: 1 << 30, Per: time.Second}},
	} {
		b.Run(p.ID, func(b *testing.B) {
			for b.Loop() {
				done, err := g.Acquire(ctx, p)
				if err != nil {
					b.Fatal(err)
				}
				done(retry.Result{StatusCode: 200})
			}
		})
	}
}
