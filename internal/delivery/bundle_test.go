package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

const bundleYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: p1
    match: all
    url: "PARTNER/c?e={event_id}&n={attempt}&k={delivery_id}"
    timeout: 2s
    retry: {max_attempts: 3, initial_interval: 100ms, max_interval: 200ms, multiplier: 2}
`

func bundleEvents(prefix string, n int) []*event.Event {
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = &event.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Name: "install"}
	}
	return evs
}

func enqueueBatch(t *testing.T, s *stacktest.Stack, evs []*event.Event) []string {
	t.Helper()
	var ids []string
	for i, res := range s.Client.EnqueueBatch(context.Background(), evs) {
		require.NoError(t, res.Err, "event %d", i)
		for _, d := range res.Receipt.Deliveries {
			ids = append(ids, d.ID)
		}
	}
	return ids
}

// byEvent counts the partner's requests per event id, and keeps the
// attempt numbers each one carried.
func byEvent(reqs []stacktest.Received) map[string][]string {
	out := map[string][]string{}
	for _, r := range reqs {
		u, _ := url.ParseRequestURI(r.URL)
		q := u.Query()
		out[q.Get("e")] = append(out[q.Get("e")], q.Get("n"))
	}
	return out
}

// TestBundle_OnlyFailuresAreRetried: a batch's deliveries travel in
// bundles; a delivery that fails in its bundle is retried alone, in its
// own task, with its attempt count, and the ones delivered are not sent
// again.
func TestBundle_OnlyFailuresAreRetried(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case strings.HasPrefix(q.Get("e"), "flaky") && q.Get("n") == "1":
			w.WriteHeader(http.StatusServiceUnavailable)
		case strings.HasPrefix(q.Get("e"), "bad"):
			w.WriteHeader(http.StatusBadRequest) // rejected: dead letter at once
		default:
			w.WriteHeader(http.StatusOK)
		}
	}
	s := stacktest.New(t, strings.ReplaceAll(bundleYAML, "PARTNER", p.URL), stacktest.Options{})
	evs := append(bundleEvents("ok", 70), bundleEvents("flaky", 5)...)
	evs = append(evs, bundleEvents("bad", 3)...)
	ids := enqueueBatch(t, s, evs)
	require.Len(t, ids, 78)

	for i, id := range ids {
		want := retry.StatusDelivered
		if strings.HasPrefix(evs[i].ID, "bad") {
			want = retry.StatusDead
		}
		rec := s.WaitStatus(t, id, want, 20*time.Second)
		wantAttempts := 1
		if strings.HasPrefix(evs[i].ID, "flaky") {
			wantAttempts = 2
		}
		require.Equal(t, wantAttempts, rec.Attempts, evs[i].ID)
	}
	got := byEvent(p.Requests())
	for _, ev := range evs {
		want := []string{"1"}
		if strings.HasPrefix(ev.ID, "flaky") {
			want = []string{"1", "2"}
		}
		require.Equal(t, want, got[ev.ID], "requests of %s", ev.ID)
	}
	n, err := s.Store.DLQSize(context.Background(), "p1")
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "the rejected ones are dead letters")
	for _, id := range ids {
		n, err := s.Redis.Exists(context.Background(), store.LeaseKey(id)).Result()
		require.NoError(t, err)
		require.Zero(t, n, "every outcome write freed its delivery's lease")
	}
}

// TestBundle_OneAttemptAtATime: a repeat of a batch event whose bundle is
// queued gets the delivery's own task; when both run at once, only one
// sends, and the other waits and then finds the delivery final.
func TestBundle_OneAttemptAtATime(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var held atomic.Int32
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("e") == "once-0" {
			held.Add(1)
			<-release
		}
		w.WriteHeader(http.StatusOK)
	}
	s := idleStack(t, p, "")
	ids := enqueueBatch(t, s, bundleEvents("once", 3))
	task := bundleTask(t, s)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	rc, err := s.Client.Enqueue(context.Background(), &event.Event{ID: "once-0", Name: "install"})
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	own := ownTasks(t, s)
	require.Equal(t, map[string]string{ids[0]: "pending"}, own, "the repeat's own task")
	info, err := asynq.NewInspectorFromRedisClient(s.Redis).GetTaskInfo(wire.QueueDefault, ids[0])
	require.NoError(t, err)
	h := idleWorker(t, s, 10).Handler()

	done := make(chan error, 1)
	go func() { done <- h.ProcessBundle(context.Background(), task) }()
	require.Eventually(t, func() bool { return held.Load() == 1 }, 10*time.Second, 5*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // without the lease, it would send and hang
	err = h.ProcessTask(ctx, asynq.NewTask(info.Type, info.Payload))
	cancel()
	require.ErrorIs(t, err, delivery.ErrAttemptUnderWay)
	_, deferral, ok := retry.DelayOf(err)
	require.True(t, ok && deferral, "spends no attempt")
	close(release)
	require.NoError(t, <-done)

	require.NoError(t, h.ProcessTask(context.Background(), asynq.NewTask(info.Type, info.Payload)), "then final: nothing to do")
	require.Equal(t, []string{"1"}, byEvent(p.Requests())["once-0"], "sent once")
	rec := s.WaitStatus(t, ids[0], retry.StatusDelivered, time.Second)
	require.Equal(t, 1, rec.Attempts)
}

// failingOn is a partner that answers code to event id and 200 to the
// others.
func failingOn(t *testing.T, id string, code int) *stacktest.Partner {
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("e") == id {
			w.WriteHeader(code)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	return p
}

// peak counts a partner's requests in flight and their most at once.
type peak struct{ inFlight, most atomic.Int32 }

// peakPartner is a partner that answers 200 once hold returns, counting
// the requests in flight.
func peakPartner(t *testing.T, hold func()) (*stacktest.Partner, *peak) {
	var load peak
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		n := load.inFlight.Add(1)
		defer load.inFlight.Add(-1)
		for m := load.most.Load(); n > m && !load.most.CompareAndSwap(m, n); m = load.most.Load() {
		}
		hold()
		w.WriteHeader(http.StatusOK)
	}
	return p, &load
}

// idleStack is a stack on bundleYAML, with extra lines for partner p1 and
// the partner at p, and no worker: tests run bundles by hand.
func idleStack(t *testing.T, p *stacktest.Partner, extra string) *stacktest.Stack {
	// Single events keep tasks of their own (no group commit), which the
	// tests run by hand.
	return stacktest.New(t, strings.ReplaceAll(bundleYAML, "PARTNER", p.URL)+extra, stacktest.Options{NoWorker: true, NoGroupCommit: true})
}

// waitAll waits until every delivery of ids has status.
func waitAll(t *testing.T, s *stacktest.Stack, ids []string, status retry.Status) {
	t.Helper()
	for _, id := range ids {
		s.WaitStatus(t, id, status, time.Second)
	}
}

// bundleTask returns the one bundle task s's client queued.
func bundleTask(t *testing.T, s *stacktest.Stack) *asynq.Task {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(s.Redis)
	tasks, err := insp.ListPendingTasks(wire.QueueDefault)
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	require.Equal(t, wire.TypeDeliverBundle, tasks[0].Type)
	require.NoError(t, insp.DeleteTask(wire.QueueDefault, tasks[0].ID))
	return asynq.NewTask(tasks[0].Type, tasks[0].Payload)
}

// ownTasks returns the delivery tasks queued or scheduled, by id.
func ownTasks(t *testing.T, s *stacktest.Stack) map[string]string {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(s.Redis)
	out := map[string]string{}
	for state, list := range map[string]func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		"pending": insp.ListPendingTasks, "scheduled": insp.ListScheduledTasks,
	} {
		tasks, err := list(wire.QueueDefault)
		require.NoError(t, err)
		for _, tk := range tasks {
			require.Equal(t, wire.TypeDeliver, tk.Type)
			out[tk.ID] = state
		}
	}
	return out
}

// idleWorker is a worker that is not started: tests run its handler by
// hand.
func idleWorker(t *testing.T, s *stacktest.Stack, concurrency int) *delivery.Worker {
	t.Helper()
	w, err := delivery.NewWorker(delivery.WorkerConfig{Redis: s.Redis, Config: s.Live, Concurrency: concurrency})
	require.NoError(t, err)
	return w
}

// TestBundle_RunAgainSendsOnlyWhatHadNoAnswer runs one bundle twice, as
// asynq does when a worker dies under it: the second run sends nothing
// that was delivered, and does not re-attempt the delivery that failed:
// that one's own task, handed off by the first run, goes on.
func TestBundle_RunAgainSendsOnlyWhatHadNoAnswer(t *testing.T) {
	t.Parallel()
	p := failingOn(t, "again-2", http.StatusInternalServerError)
	s := idleStack(t, p, "")
	ids := enqueueBatch(t, s, bundleEvents("again", 4))
	task := bundleTask(t, s)
	h := idleWorker(t, s, 10).Handler()

	require.NoError(t, h.ProcessBundle(context.Background(), task))
	require.Len(t, p.Requests(), 4)
	require.Equal(t, map[string]string{ids[2]: "scheduled"}, ownTasks(t, s), "the failed delivery's own task, its retry")
	rec, err := s.Store.Get(context.Background(), ids[2])
	require.NoError(t, err)
	require.Equal(t, retry.StatusRetrying, rec.Status)

	require.NoError(t, h.ProcessBundle(context.Background(), task), "the bundle again")
	require.Len(t, p.Requests(), 4, "nothing sent twice")
	require.Equal(t, map[string]string{ids[2]: "scheduled"}, ownTasks(t, s), "the retry kept its schedule")
	for i, id := range ids {
		if i == 2 {
			continue
		}
		rec := s.WaitStatus(t, id, retry.StatusDelivered, time.Second)
		require.Equal(t, 1, rec.Attempts)
	}
}

// TestBundle_ConcurrencyCapsDeliveries: a worker's concurrency caps the
// requests in flight, however many deliveries one bundle carries; those
// that cannot start before the bundle's deadline go to their own tasks
// without spending an attempt.
func TestBundle_ConcurrencyCapsDeliveries(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	p, load := peakPartner(t, func() { <-release })
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	s := idleStack(t, p, "")
	ids := enqueueBatch(t, s, bundleEvents("cap", 12))
	task := bundleTask(t, s)
	h := idleWorker(t, s, 3).Handler()

	// The partner answers once 3 requests wait. The bundle's deadline
	// leaves no time to start the other 9 after those: they are handed
	// off (deliveries start by the deadline less the partner's timeout,
	// 2s, and 10s of slack: 1.5s from now).
	go func() {
		require.Eventually(t, func() bool { return load.inFlight.Load() == 3 }, 10*time.Second, 5*time.Millisecond)
		time.Sleep(1500 * time.Millisecond)
		once.Do(func() { close(release) })
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 13500*time.Millisecond)
	defer cancel()
	require.NoError(t, h.ProcessBundle(ctx, task))
	require.EqualValues(t, 3, load.most.Load(), "never more than the worker's concurrency in flight")

	handed := ownTasks(t, s)
	require.Len(t, handed, 9, "the ones that could not start")
	for _, id := range ids {
		rec, err := s.Store.Get(context.Background(), id)
		if _, ok := handed[id]; ok {
			require.Equal(t, "pending", handed[id], "to run at once")
			require.ErrorIs(t, err, store.ErrNotFound, "no attempt spent on %s", id)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, retry.StatusDelivered, rec.Status)
	}
}

// TestBundle_HandOffFailsWithoutLoss: when Redis refuses a hand-off, the
// bundle fails as a deferral (asynq runs it again, spending no attempt);
// the run after that hands off what is left and sends nothing twice.
func TestBundle_HandOffFailsWithoutLoss(t *testing.T) {
	t.Parallel()
	p := failingOn(t, "hand-1", http.StatusBadGateway)
	s := idleStack(t, p, "")
	ids := enqueueBatch(t, s, bundleEvents("hand", 3))
	task := bundleTask(t, s)
	h := idleWorker(t, s, 10).Handler()

	gone := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	defer gone.Close()
	h.SetQueue(gone)
	err := h.ProcessBundle(context.Background(), task)
	require.ErrorContains(t, err, "1 of 3 deliveries not handed to their own tasks: hand off "+ids[1])
	_, deferral, ok := retry.DelayOf(err)
	require.True(t, ok && deferral, "runs again without spending an attempt: %v", err)
	require.Empty(t, ownTasks(t, s))

	h.SetQueue(asynq.NewClientFromRedisClient(s.Redis))
	require.NoError(t, h.ProcessBundle(context.Background(), task))
	require.Len(t, p.Requests(), 3, "nothing sent twice")
	require.Equal(t, map[string]string{ids[1]: "pending"}, ownTasks(t, s), "its own task, at once: the retry's delay was lost with the hand-off")
	rec, err := s.Store.Get(context.Background(), ids[1])
	require.NoError(t, err)
	require.Equal(t, retry.StatusRetrying, rec.Status)
	require.Equal(t, 1, rec.Attempts)
}

// TestBundle_StatsCountDeliveries: `postback stats` counts each delivery
// of a queued bundle, not the bundle.
func TestBundle_StatsCountDeliveries(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	s := idleStack(t, p, "")
	enqueueBatch(t, s, bundleEvents("count", 7))
	s.EnqueueMany(t, "count-single", "install", 2)

	st, err := ops.ReadStats(context.Background(), s.Redis, s.Live.Load(), "p1", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, st.Partners, 1)
	require.Equal(t, 9, st.Partners[0].Pending)
	require.NotNil(t, st.Partners[0].OldestPendingAge)
	require.GreaterOrEqual(t, *st.Partners[0].OldestPendingAge, 59.0)
}

// TestBundle_StopHandsOffWhatHasNotStarted: at shutdown the requests under
// way finish, and a bundle's deliveries that have not started go to their
// own tasks, spending no attempt; so does a delivery task still waiting.
func TestBundle_StopHandsOffWhatHasNotStarted(t *testing.T) {
	t.Parallel()
	var inFlight atomic.Int32
	release := make(chan struct{})
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		inFlight.Add(1)
		<-release
		w.WriteHeader(http.StatusOK)
	}
	s := idleStack(t, p, "")
	ids := enqueueBatch(t, s, bundleEvents("stop", 6))
	task := bundleTask(t, s)
	h := idleWorker(t, s, 2).Handler()

	done := make(chan error, 1)
	go func() { done <- h.ProcessBundle(context.Background(), task) }()
	require.Eventually(t, func() bool { return inFlight.Load() == 2 }, 10*time.Second, 5*time.Millisecond)
	h.Stop()
	close(release)
	require.NoError(t, <-done)
	require.Len(t, p.Requests(), 2, "only the two under way were sent")

	handed := ownTasks(t, s)
	require.Len(t, handed, 4)
	for _, id := range ids {
		if _, ok := handed[id]; ok {
			_, err := s.Store.Get(context.Background(), id)
			require.ErrorIs(t, err, store.ErrNotFound, "no attempt spent on %s", id)
			continue
		}
		s.WaitStatus(t, id, retry.StatusDelivered, time.Second)
	}

	var own *asynq.TaskInfo
	for id := range handed {
		own, _ = asynq.NewInspectorFromRedisClient(s.Redis).GetTaskInfo(wire.QueueDefault, id)
		break
	}
	require.NotNil(t, own)
	err := h.ProcessTask(context.Background(), asynq.NewTask(own.Type, own.Payload))
	require.ErrorContains(t, err, "the worker is shutting down")
	_, deferral, ok := retry.DelayOf(err)
	require.True(t, ok && deferral, "back to the queue without spending an attempt")
	require.Len(t, p.Requests(), 2)
}

// TestBundle_HandlerRoutes: bundles have a type no older worker routes to
// its delivery handler (asynq's ServeMux matches by prefix), and a Handler
// used on its own runs them through ProcessTask.
func TestBundle_HandlerRoutes(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	s := idleStack(t, p, "")
	ids := enqueueBatch(t, s, bundleEvents("route", 3))
	task := bundleTask(t, s)

	old := asynq.NewServeMux()
	old.HandleFunc(wire.TypeDeliver, func(context.Context, *asynq.Task) error { return nil })
	_, pattern := old.Handler(task)
	require.Empty(t, pattern, "a worker that only knows delivery tasks does not take bundles")

	h := idleWorker(t, s, 10).Handler()
	require.NoError(t, h.ProcessTask(context.Background(), task))
	waitAll(t, s, ids, retry.StatusDelivered)
}

// TestBundle_UnreadableTasks: a task in a form a newer postback wrote goes
// back to the queue for a newer worker, spending no attempt; a corrupt one
// is archived (asynq.SkipRetry). A handler without a queue to hand off to
// refuses bundles before sending anything.
func TestBundle_UnreadableTasks(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	s := idleStack(t, p, "")
	h := idleWorker(t, s, 10).Handler()
	ctx := context.Background()
	for name, task := range map[string]*asynq.Task{
		"newer delivery": asynq.NewTask(wire.TypeDeliver, []byte{0x09, 1, 2}),
		"newer bundle":   asynq.NewTask(wire.TypeDeliverBundle, []byte{0x07, 1, 2}),
	} {
		err := h.ProcessTask(ctx, task)
		_, deferral, ok := retry.DelayOf(err)
		require.True(t, ok && deferral, "%s: %v", name, err)
		require.NotErrorIs(t, err, asynq.SkipRetry, name)
		require.ErrorContains(t, err, "written by a newer postback?", name)
	}
	for name, task := range map[string]*asynq.Task{
		"corrupt delivery": asynq.NewTask(wire.TypeDeliver, []byte{0x01, 200}),
		"corrupt bundle":   asynq.NewTask(wire.TypeDeliverBundle, []byte{0xb1, 1, 3, 1, 2}),
	} {
		require.ErrorIs(t, h.ProcessTask(ctx, task), asynq.SkipRetry, name)
	}

	enqueueBatch(t, s, bundleEvents("noqueue", 2))
	task := bundleTask(t, s)
	h.SetQueue(nil)
	err := h.ProcessBundle(ctx, task)
	require.ErrorContains(t, err, "no queue to hand a bundle's deliveries off to")
	_, deferral, _ := retry.DelayOf(err)
	require.True(t, deferral)
	require.Empty(t, p.Requests(), "nothing sent")
}

// TestBundle_SlotWaitEndsInTime: a delivery task waits for a concurrency
// slot only while its partner's whole timeout still fits before the
// task's deadline; then it goes back to the queue unsent.
func TestBundle_SlotWaitEndsInTime(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-release
		w.WriteHeader(http.StatusOK)
	}
	t.Cleanup(func() { close(release) })
	s := idleStack(t, p, "")
	s.EnqueueMany(t, "wait", "install", 2)
	tasks, err := asynq.NewInspectorFromRedisClient(s.Redis).ListPendingTasks(wire.QueueDefault)
	require.NoError(t, err)
	require.Len(t, tasks, 2)
	h := idleWorker(t, s, 1).Handler()

	go func() { _ = h.ProcessTask(context.Background(), asynq.NewTask(tasks[0].Type, tasks[0].Payload)) }()
	require.Eventually(t, func() bool { return len(p.Requests()) == 1 }, 10*time.Second, 5*time.Millisecond)
	// Partner timeout 2s + 10s of slack: the slot wait ends after 300ms.
	ctx, cancel := context.WithTimeout(context.Background(), 12300*time.Millisecond)
	defer cancel()
	err = h.ProcessTask(ctx, asynq.NewTask(tasks[1].Type, tasks[1].Payload))
	require.ErrorContains(t, err, "no free concurrency slot in time")
	_, deferral, _ := retry.DelayOf(err)
	require.True(t, deferral, "spends no attempt")
	require.Len(t, p.Requests(), 1, "not sent")
}

// TestBundle_TakesTurnsUnderPartnerConcurrency: a bundle larger than its
// partner's concurrency cap sends in turns under it, rather than having
// the gate defer (and hand off) what goes over.
func TestBundle_TakesTurnsUnderPartnerConcurrency(t *testing.T) {
	t.Parallel()
	p, load := peakPartner(t, func() { time.Sleep(30 * time.Millisecond) })
	s := idleStack(t, p, "    concurrency: 2\n")
	ids := enqueueBatch(t, s, bundleEvents("turns", 7))
	task := bundleTask(t, s)
	h := idleWorker(t, s, 20).Handler()

	require.NoError(t, h.ProcessBundle(context.Background(), task))
	require.Empty(t, ownTasks(t, s), "nothing deferred by the gate, nothing handed off")
	require.EqualValues(t, 2, load.most.Load())
	waitAll(t, s, ids, retry.StatusDelivered)
}

// TestBundle_PanicIsHandedOff: a panic in one delivery of a bundle ends
// neither the worker nor the others: that delivery goes to its own task,
// unsent, spending no attempt.
func TestBundle_PanicIsHandedOff(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	s := idleStack(t, p, "")
	ids := enqueueBatch(t, s, bundleEvents("panic", 3))
	task := bundleTask(t, s)
	h := idleWorker(t, s, 10).Handler()
	h.BeforeBundled(func(id string) {
		if id == "panic-1" {
			panic("boom")
		}
	})

	require.NoError(t, h.ProcessBundle(context.Background(), task))
	require.Equal(t, map[string]string{ids[1]: "scheduled"}, ownTasks(t, s), "its own task, a second later")
	_, err := s.Store.Get(context.Background(), ids[1])
	require.ErrorIs(t, err, store.ErrNotFound, "no attempt spent")
	s.WaitStatus(t, ids[0], retry.StatusDelivered, time.Second)
	s.WaitStatus(t, ids[2], retry.StatusDelivered, time.Second)
	require.Len(t, p.Requests(), 2)
}

// TestBundle_SkipFreesTheLease: a delivery skipped at attempt time (here a
// required macro is missing) frees its lease with the skip record.
func TestBundle_SkipFreesTheLease(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	s := idleStack(t, p, "    require: [click_id]\n")
	ids := enqueueBatch(t, s, bundleEvents("skip", 2))
	task := bundleTask(t, s)
	h := idleWorker(t, s, 10).Handler()

	require.NoError(t, h.ProcessBundle(context.Background(), task))
	for _, id := range ids {
		s.WaitStatus(t, id, retry.StatusSkipped, time.Second)
		n, err := s.Redis.Exists(context.Background(), store.LeaseKey(id)).Result()
		require.NoError(t, err)
		require.Zero(t, n, "the skip record freed the lease")
	}
	require.Empty(t, p.Requests())
}

// TestHandler_OutcomeOutlivesTheTask: when the task's context ends during
// the send (asynq's deadline or shutdown), the attempt is still recorded,
// and the lease freed: unrecorded, a delivered request would be sent
// again. (A write under the ended context goes out or not at random, as
// the pipeline's select finds it; 8 deliveries make a miss show.)
func TestHandler_OutcomeOutlivesTheTask(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // until the worker gives up
	}
	s := idleStack(t, p, "")
	ids := s.EnqueueMany(t, "cut", "install", 8)
	insp := asynq.NewInspectorFromRedisClient(s.Redis)
	h := idleWorker(t, s, 10).Handler()

	for _, id := range ids {
		info, err := insp.GetTaskInfo(wire.QueueDefault, id)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }()
		err = h.ProcessTask(ctx, asynq.NewTask(info.Type, info.Payload))
		_, deferral, ok := retry.DelayOf(err)
		require.True(t, ok && !deferral, "a failed attempt, retried later: %v", err)
		rec, err := s.Store.Get(context.Background(), id)
		require.NoError(t, err, "the attempt is recorded")
		require.Equal(t, retry.StatusRetrying, rec.Status)
		require.Equal(t, 1, rec.Attempts)
		n, err := s.Redis.Exists(context.Background(), store.LeaseKey(id)).Result()
		require.NoError(t, err)
		require.Zero(t, n)
	}
}
