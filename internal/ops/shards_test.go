package ops_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// shardsYAML has three partners: ok answers 200, ordered 200 too but
// orders by click id, reject answers 400 while reject is unset.
const shardsYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
redis:
  shards: SHARDS
partners:
  - id: ok
    match: all
    url: "OK/c?e={event_id}&u={customer_user_id}"
  - id: ordered
    match: all
    url: "OK/o?e={event_id}&c={click_id}"
    order_by: click_id
  - id: reject
    match: all
    url: "REJ/r?e={event_id}"
`

type shardsBundle struct {
	stack      *stacktest.Stack
	ok, rej    *stacktest.Partner
	rejectsNow *atomic.Bool
	dlq        *ops.DLQ
}

func setupShards(t *testing.T, shards int, o stacktest.Options) shardsBundle {
	t.Helper()
	b := shardsBundle{ok: stacktest.NewPartner(t), rej: stacktest.NewPartner(t), rejectsNow: &atomic.Bool{}}
	b.rejectsNow.Store(true)
	b.rej.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		if b.rejectsNow.Load() {
			http.Error(w, "no such click", http.StatusBadRequest)
		}
	}
	yaml := strings.NewReplacer("SHARDS", fmt.Sprint(shards), "OK/", b.ok.URL+"/", "REJ/", b.rej.URL+"/").Replace(shardsYAML)
	b.stack = stacktest.New(t, yaml, o)
	var err error
	b.dlq, err = ops.NewDLQ(ops.DLQConfig{Redis: b.stack.Redis, Config: b.stack.Live})
	require.NoError(t, err)
	return b
}

// send enqueues n events with ids prefix-i, half in batches (bundles)
// and half one at a time, each with one of 10 click ids.
func (b shardsBundle) send(t *testing.T, prefix string, n int) []*event.Event {
	t.Helper()
	ctx := context.Background()
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = &event.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Name: "install", ClickID: fmt.Sprintf("click-%d", i%10)}
		evs[i].User.CustomerUserID = fmt.Sprintf("cust-%d", i%7)
	}
	half := n / 2
	for lo := 0; lo < half; lo += 50 {
		for _, r := range b.stack.Client.EnqueueBatch(ctx, evs[lo:min(lo+50, half)]) {
			require.NoError(t, r.Err)
		}
	}
	for _, ev := range evs[half:] {
		_, err := b.stack.Client.Enqueue(ctx, ev)
		require.NoError(t, err)
	}
	return evs
}

// eventsAt returns the distinct event ids the partner received on path.
func eventsAt(p *stacktest.Partner, path string) map[string]int {
	out := map[string]int{}
	for _, r := range p.Requests() {
		u, err := url.Parse(r.URL)
		if err == nil && u.Path == path {
			out[u.Query().Get("e")]++
		}
	}
	return out
}

func waitEvents(t *testing.T, p *stacktest.Partner, path string, n int, timeout time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := eventsAt(p, path)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: want %d events within %v, got %d", path, n, timeout, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With 4 shards on one server: every delivery is stored where its
// placement says (its event id's shard, or its partner and click id's for
// ordered), all are delivered once, and the ops views (DLQ list, stats,
// triage, replay) read every shard.
func TestShards_SingleServer(t *testing.T) {
	t.Parallel()
	const n, shards = 120, 4
	b := setupShards(t, shards, stacktest.Options{})
	ctx := context.Background()
	evs := b.send(t, "evt", n)

	for _, path := range []string{"/c", "/o"} {
		got := waitEvents(t, b.ok, path, n, 30*time.Second)
		for id, c := range got {
			require.Equal(t, 1, c, "%s %s sent %d times", path, id, c)
		}
	}
	b.stack.WaitDLQSize(t, "reject", n, 30*time.Second)

	used := map[int]int{}
	for _, ev := range evs {
		for partner, want := range map[string]int{
			"ok":      wire.ShardOf(ev.ID, shards),
			"ordered": wire.ShardOf("ordered\x00"+ev.ClickID, shards),
			"reject":  wire.ShardOf(ev.ID, shards),
		} {
			id := wire.DeliveryID(ev.ID, partner)
			rec, st, err := b.stack.Store.GetAny(ctx, id)
			require.NoError(t, err, "%s", id)
			require.Equal(t, want, st.Index(), "%s of %s is stored in its placement's shard", partner, ev.ID)
			if partner == "reject" {
				require.Equal(t, retry.StatusDead, rec.Status)
			} else {
				require.Equal(t, retry.StatusDelivered, rec.Status)
			}
			used[st.Index()]++
		}
	}
	require.Len(t, used, shards, "every shard holds deliveries: %v", used)
	_, err := b.stack.Store.Get(ctx, wire.DeliveryID(evs[0].ID, "ok"))
	if wire.ShardOf(evs[0].ID, shards) != 0 {
		require.ErrorIs(t, err, store.ErrNotFound, "shard 0 does not hold another shard's record")
	}

	// The DLQ lists every shard's letters, newest first.
	list, err := b.dlq.List(ctx, store.DeadQuery{})
	require.NoError(t, err)
	require.Len(t, list, n)
	for i := 1; i < len(list); i++ {
		require.False(t, list[i].DeadAt.After(list[i-1].DeadAt), "newest first across shards")
	}
	limited, err := b.dlq.List(ctx, store.DeadQuery{Partner: "reject", Limit: 5})
	require.NoError(t, err)
	require.Len(t, limited, 5)
	require.Equal(t, list[0].DeadAt, limited[0].DeadAt)
	show, err := b.dlq.Show(ctx, list[n-1].ID)
	require.NoError(t, err)
	require.Len(t, show.History, 1)

	st, err := ops.ReadStats(ctx, b.stack.Redis, b.stack.Live.Load(), "", time.Now())
	require.NoError(t, err)
	byID := map[string]ops.PartnerStats{}
	for _, p := range st.Partners {
		byID[p.Partner] = p
	}
	require.EqualValues(t, n, byID["ok"].Delivered1h, "stats sum the shards")
	require.EqualValues(t, n, byID["ordered"].Delivered1h)
	require.EqualValues(t, n, byID["reject"].Dead1h)
	require.EqualValues(t, n, byID["reject"].DLQSize)
	require.Len(t, st.Shards, shards)
	var dead int64
	for _, s := range st.Shards {
		dead += s.DLQSize
		require.Zero(t, s.Pending+s.Scheduled+s.InFlight, "shard %d drained", s.Shard)
	}
	require.EqualValues(t, n, dead)

	groups, err := b.dlq.Triage(ctx, ops.TriageQuery{Partner: "reject"})
	require.NoError(t, err)
	require.Len(t, groups, 1)
	require.Equal(t, n, groups[0].Count, "one group across the shards")

	b.rejectsNow.Store(false)
	res, err := b.dlq.Replay(ctx, ops.Selection{Group: groups[0].ID}, ops.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, ops.ReplayResult{Selected: n, Enqueued: n, Removed: n}, res)
	for _, ev := range evs {
		b.stack.WaitStatus(t, wire.DeliveryID(ev.ID, "reject"), retry.StatusDelivered, 30*time.Second)
	}
	b.stack.WaitDLQSize(t, "reject", 0, 5*time.Second)
	b.stack.WaitQueuesEmpty(t, 10*time.Second)
}

// A Redis Cluster of 3 masters with 6 shards: a few hundred events to
// two partners are all delivered once, and each master carries at least
// a fifth of the commands.
func TestShards_Cluster(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	c := redistest.StartCluster(t, 3)
	ctx := context.Background()
	before := make([]int64, len(c.Addrs))
	for i := range c.Addrs {
		var err error
		before[i], err = redistest.CommandCalls(ctx, c.Node(t, i))
		require.NoError(t, err)
	}
	const n = 300
	b := setupShards(t, 6, stacktest.Options{RedisURL: c.URL()})
	b.rejectsNow.Store(false) // two partners deliver; the third, reject, takes them all too
	b.send(t, "cl", n)
	for _, path := range []string{"/c", "/o", "/r"} {
		p := b.ok
		if path == "/r" {
			p = b.rej
		}
		got := waitEvents(t, p, path, n, time.Minute)
		for id, c := range got {
			require.Equal(t, 1, c, "%s %s sent %d times", path, id, c)
		}
	}
	var total int64
	calls := make([]int64, len(c.Addrs))
	for i := range c.Addrs {
		after, err := redistest.CommandCalls(ctx, c.Node(t, i))
		require.NoError(t, err)
		calls[i] = after - before[i]
		total += calls[i]
	}
	t.Logf("commands per master: %v", calls)
	for i, k := range calls {
		require.GreaterOrEqual(t, k*5, total, "master %d ran %d of %d commands: %v", i, k, total, calls)
	}

	// An erasure scans every master: the user's delivered records are
	// found in every shard they were placed in.
	x, err := ops.NewEraser(ops.EraseConfig{Redis: b.stack.Redis, Shards: 6})
	require.NoError(t, err)
	sub, err := event.NewSubject(event.SubjectCustomerUserID, "cust-3")
	require.NoError(t, err)
	e, err := x.DryRun(ctx, sub)
	require.NoError(t, err)
	want := 0
	for i := range n {
		if i%7 == 3 {
			want++
		}
	}
	require.EqualValues(t, want, e.Deliveries, "the ok partner's records that sent cust-3")
}

// Raising redis.shards from 1 to 4 with deliveries pending, retrying and
// dead strands nothing: the old shard's queue is still served, its dead
// letters still listed and replayed, and new deliveries go to every
// shard.
func TestShards_RaiseFromOne(t *testing.T) {
	t.Parallel()
	url := redistest.DB(t)
	ok, rej := stacktest.NewPartner(t), stacktest.NewPartner(t)
	rejecting := &atomic.Bool{}
	rejecting.Store(true)
	rej.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		if rejecting.Load() {
			http.Error(w, "no", http.StatusBadRequest)
		}
	}
	// The flaky partner asks each event's first attempt to come back
	// later (429: a retry, which opens no circuit).
	var seen sync.Map
	flaky := stacktest.NewPartner(t)
	flaky.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		if _, again := seen.LoadOrStore(r.URL.Query().Get("e"), true); !again {
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}
	}
	yaml := func(shards int) string {
		return fmt.Sprintf(`
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
redis:
  shards: %d
partners:
  - id: ok
    match: all
    url: "%s/c?e={event_id}"
  - id: flaky
    match: all
    url: "%s/f?e={event_id}"
    retry: {max_attempts: 5, initial_interval: 3s, max_interval: 3s, multiplier: 1}
  - id: reject
    match: all
    url: "%s/r?e={event_id}"
`, shards, ok.URL, flaky.URL, rej.URL)
	}
	ctx := context.Background()
	one := stacktest.New(t, yaml(1), stacktest.Options{RedisURL: url, NoWorker: true})
	w, err := delivery.NewWorker(delivery.WorkerConfig{
		Redis: one.Redis, Config: one.Live, Concurrency: 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PollInterval: 10 * time.Millisecond, ScheduleInterval: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
	})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(w.Shutdown) }
	t.Cleanup(stop)
	const n = 30
	one.EnqueueMany(t, "old", "install", n)
	one.WaitDLQSize(t, "reject", n, 20*time.Second)
	waitEvents(t, flaky, "/f", n, 20*time.Second) // each one retrying now
	waitEvents(t, ok, "/c", n, 20*time.Second)
	stop()
	one.EnqueueMany(t, "pending", "install", n) // no worker: pending in shard 0
	before, err := ops.ReadStats(ctx, one.Redis, one.Live.Load(), "", time.Now())
	require.NoError(t, err)
	pending, scheduled := 0, 0
	for _, p := range before.Partners {
		pending, scheduled = pending+p.Pending, scheduled+p.Scheduled
	}
	require.Equal(t, 3*n, pending, "deliveries pending in shard 0")
	require.Equal(t, n, scheduled, "the flaky partner's first attempts wait for their retry")

	four := stacktest.New(t, yaml(4), stacktest.Options{RedisURL: url})
	evs := four.EnqueueMany(t, "new", "install", n)
	for _, path := range []string{"/c", "/f"} {
		p := ok
		if path == "/f" {
			p = flaky
		}
		waitEvents(t, p, path, 3*n, 30*time.Second)
	}
	four.WaitDLQSize(t, "reject", 3*n, 30*time.Second)
	shardsUsed := map[int]bool{}
	for _, id := range evs {
		_, st, err := four.Store.GetAny(ctx, id)
		require.NoError(t, err)
		shardsUsed[st.Index()] = true
	}
	require.Greater(t, len(shardsUsed), 1, "new deliveries spread over the shards")
	for _, prefix := range []string{"old", "pending", "new"} {
		for i := range n {
			ev := fmt.Sprintf("%s-%d", prefix, i)
			four.WaitStatus(t, wire.DeliveryID(ev, "ok"), retry.StatusDelivered, 10*time.Second)
			four.WaitStatus(t, wire.DeliveryID(ev, "flaky"), retry.StatusDelivered, 10*time.Second)
			four.WaitStatus(t, wire.DeliveryID(ev, "reject"), retry.StatusDead, 10*time.Second)
		}
	}

	d, err := ops.NewDLQ(ops.DLQConfig{Redis: four.Redis, Config: four.Live})
	require.NoError(t, err)
	rejecting.Store(false)
	res, err := d.Replay(ctx, ops.Selection{All: true}, ops.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, ops.ReplayResult{Selected: 3 * n, Enqueued: 3 * n, Removed: 3 * n}, res)
	waitEvents(t, rej, "/r", 3*n, 30*time.Second)
	for _, prefix := range []string{"old", "pending", "new"} {
		for i := range n {
			four.WaitStatus(t, wire.DeliveryID(fmt.Sprintf("%s-%d", prefix, i), "reject"), retry.StatusDelivered, 10*time.Second)
		}
	}
	four.WaitQueuesEmpty(t, 10*time.Second)
}

// Lowering redis.shards from 4 to 2 with previous_shards 4: workers keep
// serving the two shards no longer placed into until they are empty, as
// postback stats shows, and new deliveries go to the first two only.
func TestShards_LowerWithDrain(t *testing.T) {
	t.Parallel()
	url := redistest.DB(t)
	ok := stacktest.NewPartner(t)
	yaml := func(redis string) string {
		return fmt.Sprintf(`
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
redis: %s
partners:
  - id: ok
    match: all
    url: "%s/c?e={event_id}"
`, redis, ok.URL)
	}
	ctx := context.Background()
	four := stacktest.New(t, yaml("{shards: 4}"), stacktest.Options{RedisURL: url, NoWorker: true})
	const n = 40
	old := four.EnqueueMany(t, "old", "install", n)
	inShards := map[int]bool{}
	for _, id := range old {
		_, st, err := four.Store.GetAny(ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "pending: no record yet")
		require.Nil(t, st)
	}
	for k := range 4 {
		pending, err := four.Redis.LLen(ctx, "asynq:{"+wire.Queue(k)+"}:pending").Result()
		require.NoError(t, err)
		inShards[k] = pending > 0
	}
	require.Equal(t, map[int]bool{0: true, 1: true, 2: true, 3: true}, inShards, "pending in every shard")

	two := stacktest.New(t, yaml("{shards: 2, previous_shards: 4}"), stacktest.Options{RedisURL: url})
	evs := two.EnqueueMany(t, "new", "install", n)
	waitEvents(t, ok, "/c", 2*n, 30*time.Second)
	for _, id := range append(old, evs...) {
		two.WaitStatus(t, id, retry.StatusDelivered, 10*time.Second)
	}
	for _, id := range evs {
		_, st, err := two.Store.GetAny(ctx, id)
		require.NoError(t, err)
		require.Less(t, st.Index(), 2, "new deliveries go to the shards placed into")
	}
	two.WaitQueuesEmpty(t, 10*time.Second)
	st, err := ops.ReadStats(ctx, two.Redis, two.Live.Load(), "", time.Now())
	require.NoError(t, err)
	require.Len(t, st.Shards, 4, "stats show the shards being drained")
	for _, s := range st.Shards {
		require.Zero(t, s.Pending+s.Scheduled+s.InFlight+int(s.DLQSize), "shard %d drained", s.Shard)
	}
}

// After raising redis.shards from 1 to 4 with previous_shards: 1, a
// repeat of an event accepted before the change, delivered or still
// pending, is answered as its duplicate and sends nothing again, though
// its id now places it in another shard.
func TestShards_RepeatAcrossChange(t *testing.T) {
	t.Parallel()
	url := redistest.DB(t)
	ok := stacktest.NewPartner(t)
	yaml := func(redis string) string {
		return fmt.Sprintf(`
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
redis: %s
partners:
  - id: ok
    match: all
    url: "%s/c?e={event_id}"
  - id: ordered
    match: all
    url: "%s/o?e={event_id}"
    order_by: click_id
`, redis, ok.URL, ok.URL)
	}
	ctx := context.Background()
	one := stacktest.New(t, yaml("{shards: 1}"), stacktest.Options{RedisURL: url, NoWorker: true})
	w, err := delivery.NewWorker(delivery.WorkerConfig{
		Redis: one.Redis, Config: one.Live, Concurrency: 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		PollInterval: 10 * time.Millisecond, ScheduleInterval: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second,
	})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(w.Shutdown) }
	t.Cleanup(stop)
	const n = 40
	evs := func(prefix string) []*event.Event {
		out := make([]*event.Event, n)
		for i := range out {
			out[i] = &event.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Name: "install", ClickID: fmt.Sprintf("click-%d", i%5)}
		}
		return out
	}
	delivered, pending := evs("done"), evs("waiting")
	for _, r := range one.Client.EnqueueBatch(ctx, delivered) {
		require.NoError(t, r.Err)
	}
	waitEvents(t, ok, "/c", n, 20*time.Second)
	waitEvents(t, ok, "/o", n, 20*time.Second)
	stop()
	for _, ev := range pending {
		_, err := one.Client.Enqueue(ctx, ev)
		require.NoError(t, err)
	}

	four := stacktest.New(t, yaml("{shards: 4, previous_shards: 1}"), stacktest.Options{RedisURL: url})
	straddling := 0
	for i, ev := range append(delivered, pending...) {
		if wire.ShardOf(ev.ID, 4) != 0 {
			straddling++
		}
		again := &event.Event{ID: ev.ID, Name: ev.Name, ClickID: ev.ClickID}
		if i%2 == 0 {
			rc, err := four.Client.Enqueue(ctx, again)
			require.NoError(t, err)
			require.True(t, rc.Duplicate, "%s is a repeat", ev.ID)
			continue
		}
		res := four.Client.EnqueueBatch(ctx, []*event.Event{again})
		require.NoError(t, res[0].Err)
		require.True(t, res[0].Receipt.Duplicate, "%s is a repeat", ev.ID)
	}
	require.Greater(t, straddling, n/2, "most repeats' ids now place them in another shard")
	fresh := &event.Event{ID: "fresh", Name: "install", ClickID: "click-0"}
	rc, err := four.Client.Enqueue(ctx, fresh)
	require.NoError(t, err)
	require.False(t, rc.Duplicate)
	for _, ev := range append(pending, fresh) {
		four.WaitStatus(t, wire.DeliveryID(ev.ID, "ok"), retry.StatusDelivered, 20*time.Second)
		four.WaitStatus(t, wire.DeliveryID(ev.ID, "ordered"), retry.StatusDelivered, 20*time.Second)
	}
	four.WaitQueuesEmpty(t, 10*time.Second)
	for _, path := range []string{"/c", "/o"} {
		got := eventsAt(ok, path)
		require.Len(t, got, 2*n+1, path)
		for id, c := range got {
			require.Equal(t, 1, c, "%s %s sent %d times", path, id, c)
		}
	}
	_, st, err := four.Store.GetAny(ctx, wire.DeliveryID("waiting-1", "ok"))
	require.NoError(t, err)
	require.Zero(t, st.Index(), "a pending delivery of before the change stays in its shard")
}
