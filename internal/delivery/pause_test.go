package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/retry"
)

// TestWorker_HoldsPausedPartner pauses a partner whose max_age is 2s,
// enqueues single events and a batch (bundles) while it is paused, and
// holds them 4s: nothing is sent, no attempt is spent, nothing dies. After
// the resume, each delivery's first attempt fails and its retry succeeds:
// max_age left out the paused time, or the failures would have been
// exhausted. Not parallel: its seconds of held tasks cycling through
// asynq load the shared machine, and other tests time asynq's retries.
func TestWorker_HoldsPausedPartner(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	b := stacktest.NewRetry(t, "{max_attempts: 3, initial_interval: 100ms, max_interval: 200ms, max_age: 2s}", "2s",
		func(_ int, w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			first := !seen[r.URL.Query().Get("e")]
			seen[r.URL.Query().Get("e")] = true
			mu.Unlock()
			if first {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
	ctx := context.Background()
	st := b.Stack.Store
	_, err := st.Pause(ctx, "p1", "maintenance", "cli", time.Now())
	require.NoError(t, err)
	time.Sleep(1500 * time.Millisecond) // the worker's copy of the pauses catches up

	var ids []string
	for i := range 3 {
		ids = append(ids, b.Enqueue(t, fmt.Sprintf("evt-held-%d", i)))
	}
	var batch []*event.Event
	for i := range 5 {
		batch = append(batch, &event.Event{ID: fmt.Sprintf("evt-held-batch-%d", i), Name: "install"})
	}
	for _, res := range b.Stack.Client.EnqueueBatch(ctx, batch) {
		require.NoError(t, res.Err)
		ids = append(ids, res.Receipt.Deliveries[0].ID)
	}

	time.Sleep(4 * time.Second) // twice max_age
	require.Empty(t, b.Partner.Requests())
	for _, id := range ids {
		rec, err := st.Get(ctx, id)
		if err == nil {
			require.Zero(t, rec.Attempts, id)
			require.NotEqual(t, retry.StatusDead, rec.Status, id)
		}
	}
	size, err := st.DLQSize(ctx, "p1")
	require.NoError(t, err)
	require.Zero(t, size)
	require.Contains(t, b.Stack.Logs(), "reason=\"partner paused\"")

	was, err := st.Resume(ctx, "p1", time.Now())
	require.NoError(t, err)
	require.True(t, was)
	for _, id := range ids {
		rec := b.Stack.WaitStatus(t, id, retry.StatusDelivered, 20*time.Second)
		require.Equal(t, 2, rec.Attempts, id)
	}
	size, err = st.DLQSize(ctx, "p1")
	require.NoError(t, err)
	require.Zero(t, size)
	require.Len(t, b.Partner.Requests(), 2*len(ids))
	require.False(t, strings.Contains(b.Stack.Logs(), "max_age reached"))
}

// TestWorker_PausedMetric: postback_partner_paused is 1 while the
// partner is paused, 0 once resumed.
func TestWorker_PausedMetric(t *testing.T) {
	t.Parallel()
	b := setupWorker(t, `
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: true}
partners:
  - id: paused-gauge
    url: "https://pb.example/c"
`, delivery.WorkerConfig{StatsInterval: 50 * time.Millisecond})
	ctx := context.Background()
	gauge := func() float64 { return testutil.ToFloat64(metrics.PartnerPaused.WithLabelValues("paused-gauge")) }
	_, err := b.stack.Store.Pause(ctx, "paused-gauge", "", "api", time.Now())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return gauge() == 1 }, 5*time.Second, 20*time.Millisecond)
	_, err = b.stack.Store.Resume(ctx, "paused-gauge", time.Now())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return gauge() == 0 }, 5*time.Second, 20*time.Millisecond)
}
