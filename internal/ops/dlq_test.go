package ops_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/retry"
)

type dlqBundle struct {
	stacktest.Retry
	dlq *ops.DLQ
	ok  *atomic.Bool // the partner answers 200 when set, else 400
}

// setupDLQ starts a stack whose partner rejects (400) until ok is set.
func setupDLQ(t *testing.T) dlqBundle {
	t.Helper()
	ok := &atomic.Bool{}
	b := stacktest.NewRetry(t, stacktest.ShortRetry, "2s", func(_ int, w http.ResponseWriter, _ *http.Request) {
		if ok.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"bad click"}`))
	})
	d, err := ops.NewDLQ(ops.DLQConfig{Redis: b.Stack.Redis, Config: b.Stack.Live})
	require.NoError(t, err)
	return dlqBundle{Retry: b, dlq: d, ok: ok}
}

func (b dlqBundle) deadLetters(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = b.Enqueue(t, "evt-dead-"+strconv.Itoa(i))
	}
	b.Stack.WaitDLQSize(t, "p1", int64(n), 10*time.Second)
	return ids
}

func TestDLQ_ReplayDeliversAndEmpties(t *testing.T) {
	t.Parallel()
	b := setupDLQ(t)
	ids := b.deadLetters(t, 3)
	ctx := context.Background()

	list, err := b.dlq.List(ctx, store.DeadQuery{Partner: "p1"})
	require.NoError(t, err)
	require.Len(t, list, 3)
	require.Equal(t, "rejected", list[0].Reason)
	require.NotNil(t, list[0].Event)

	b.ok.Store(true)
	res, err := b.dlq.Replay(ctx, ops.Selection{Partner: "p1"}, ops.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, ops.ReplayResult{Selected: 3, Enqueued: 3, Removed: 3}, res)
	for _, id := range ids {
		rec := b.Stack.WaitStatus(t, id, retry.StatusDelivered, 10*time.Second)
		require.Equal(t, 1, rec.Attempts, "the attempt count starts again")
		require.Equal(t, 1, rec.Replays)
		require.Empty(t, rec.Reason)
		got := b.Attempts(t, id)
		require.Len(t, got, 2, "the history spans the replay")
		require.Equal(t, "rejected", got[0].Outcome)
		require.Equal(t, 0, got[0].Replay)
		require.Equal(t, "delivered", got[1].Outcome)
		require.Equal(t, 1, got[1].Replay)
	}
	size, err := b.Stack.Store.DLQSize(ctx, "p1")
	require.NoError(t, err)
	require.Zero(t, size)
	b.Stack.WaitQueuesEmpty(t, 5*time.Second)
}

func TestDLQ_ReplaySendsFixedTemplate(t *testing.T) {
	t.Parallel()
	b := setupDLQ(t)
	ids := b.deadLetters(t, 2)
	for _, r := range b.Partner.Requests() {
		require.True(t, strings.HasPrefix(r.URL, "/c?"))
	}

	// Ops fix the template (the partner wanted /fixed) and replay.
	fixed := strings.NewReplacer("PARTNER", b.Partner.URL, "RETRY", stacktest.ShortRetry, "TIMEOUT", "2s").
		Replace(strings.Replace(stacktest.RetryYAML, "/c?e=", "/fixed?e=", 1))
	fixed = strings.ReplaceAll(fixed, "${api_key}", stacktest.APIKey)
	cfg, err := config.Parse("test.yaml", []byte(fixed), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	b.Stack.Live.Store(cfg)
	b.ok.Store(true)

	var dry []ops.ReplayItem
	res, err := b.dlq.Replay(context.Background(), ops.Selection{IDs: ids}, ops.ReplayOptions{
		DryRun: true, OnItem: func(it ops.ReplayItem) { dry = append(dry, it) },
	})
	require.NoError(t, err)
	require.Equal(t, 2, res.Selected)
	require.Zero(t, res.Enqueued)
	require.Len(t, dry, 2)
	require.Equal(t, "would_send", dry[0].Result)
	require.Contains(t, dry[0].URL, "/fixed?e=evt-dead-")
	size, err := b.Stack.Store.DLQSize(context.Background(), "p1")
	require.NoError(t, err)
	require.EqualValues(t, 2, size, "a dry run changes nothing")

	_, err = b.dlq.Replay(context.Background(), ops.Selection{IDs: ids}, ops.ReplayOptions{})
	require.NoError(t, err)
	for _, id := range ids {
		rec := b.Stack.WaitStatus(t, id, retry.StatusDelivered, 10*time.Second)
		require.Contains(t, rec.URL, "/fixed?e=")
	}
	reqs := b.Partner.Requests()
	require.Len(t, reqs, 4)
	for _, r := range reqs[2:] {
		require.True(t, strings.HasPrefix(r.URL, "/fixed?e=evt-dead-"), r.URL)
	}
}

// A replay that stopped after marking a dead letter queued (a crash before
// the enqueue) leaves it in the DLQ, and the next replay delivers it.
func TestDLQ_ReplayAfterInterruptedClaim(t *testing.T) {
	t.Parallel()
	b := setupDLQ(t)
	ids := b.deadLetters(t, 1)
	ctx := context.Background()

	claims, err := b.Stack.Store.ClaimReplay(ctx, "p1", ids, time.Now())
	require.NoError(t, err)
	require.True(t, claims[0].Claimed)
	// ... crash: no task, no settle.
	list, err := b.dlq.List(ctx, store.DeadQuery{})
	require.NoError(t, err)
	require.Len(t, list, 1, "still visible in the DLQ")
	require.Equal(t, retry.StatusQueued, list[0].Status)

	b.ok.Store(true)
	res, err := b.dlq.Replay(ctx, ops.Selection{Partner: "p1"}, ops.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Enqueued)
	b.Stack.WaitStatus(t, ids[0], retry.StatusDelivered, 10*time.Second)
	b.Stack.WaitDLQSize(t, "p1", 0, 5*time.Second)
}

// A replayed delivery that fails again is back in the DLQ with its new
// reason; nothing is lost either way.
func TestDLQ_ReplayDiesAgain(t *testing.T) {
	t.Parallel()
	b := setupDLQ(t)
	ids := b.deadLetters(t, 1)
	ctx := context.Background()

	res, err := b.dlq.Replay(ctx, ops.Selection{All: true}, ops.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Enqueued)
	require.Eventually(t, func() bool {
		return len(b.Attempts(t, ids[0])) == 2
	}, 10*time.Second, 20*time.Millisecond)
	rec := b.Stack.WaitStatus(t, ids[0], retry.StatusDead, 10*time.Second)
	require.Equal(t, "rejected", rec.Reason)
	b.Stack.WaitDLQSize(t, "p1", 1, 5*time.Second)
	dl, err := b.dlq.Show(ctx, ids[0])
	require.NoError(t, err)
	require.Len(t, dl.History, 2)
}

func TestDLQ_Purge(t *testing.T) {
	t.Parallel()
	b := setupDLQ(t)
	ids := b.deadLetters(t, 3)
	ctx := context.Background()

	_, err := b.dlq.Purge(ctx, ops.Selection{})
	require.ErrorIs(t, err, ops.ErrNoSelection)
	n, err := b.dlq.Purge(ctx, ops.Selection{Partner: "p1", OlderThan: time.Hour})
	require.NoError(t, err)
	require.Zero(t, n, "none is an hour old")

	n, err = b.dlq.Purge(ctx, ops.Selection{IDs: ids[:1]})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	rec, err := b.Stack.Store.Get(ctx, ids[0])
	require.NoError(t, err)
	require.Equal(t, retry.StatusPurged, rec.Status)
	_, err = b.dlq.Show(ctx, ids[0])
	require.ErrorIs(t, err, store.ErrNotFound)

	n, err = b.dlq.Purge(ctx, ops.Selection{All: true})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	b.Stack.WaitDLQSize(t, "p1", 0, time.Second)
}

func TestDLQ_ExportAndStats(t *testing.T) {
	t.Parallel()
	b := setupDLQ(t)
	b.deadLetters(t, 2)
	ctx := context.Background()

	var got []*ops.DeadLetterDetail
	require.NoError(t, b.dlq.Export(ctx, "", func(d *ops.DeadLetterDetail) error {
		got = append(got, d)
		return nil
	}))
	require.Len(t, got, 2)
	require.Len(t, got[0].History, 1)
	require.Equal(t, http.StatusBadRequest, got[0].History[0].Status)
	require.Contains(t, got[0].History[0].Response, "bad click")

	st, err := ops.ReadStats(ctx, b.Stack.Redis, b.Stack.Live.Load(), "", time.Now())
	require.NoError(t, err)
	require.Len(t, st.Partners, 1)
	p := st.Partners[0]
	require.Equal(t, "p1", p.Partner)
	require.EqualValues(t, 2, p.Dead1h)
	require.EqualValues(t, 2, p.Attempts1h)
	require.EqualValues(t, 2, p.DLQSize)
	require.NotNil(t, p.SuccessRate)
	require.Zero(t, *p.SuccessRate)
	require.NotNil(t, p.LatencyP50)
	require.GreaterOrEqual(t, *p.LatencyP99, *p.LatencyP50)
	require.Nil(t, p.OldestPendingAge, "nothing is queued")
}

// Queue figures: tasks waiting for the worker count as pending, with the
// age of the oldest.
func TestReadStats_Pending(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	yaml := strings.NewReplacer("PARTNER", p.URL, "RETRY", stacktest.ShortRetry, "TIMEOUT", "2s").Replace(stacktest.RetryYAML)
	s := stacktest.New(t, yaml, stacktest.Options{NoWorker: true})
	s.EnqueueMany(t, "evt-pending", "install", 5)

	st, err := ops.ReadStats(context.Background(), s.Redis, s.Live.Load(), "p1", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, st.Partners, 1)
	require.Equal(t, 5, st.Partners[0].Pending)
	require.NotNil(t, st.Partners[0].OldestPendingAge)
	require.GreaterOrEqual(t, *st.Partners[0].OldestPendingAge, 59.0)
	require.Nil(t, st.Partners[0].SuccessRate)
}
