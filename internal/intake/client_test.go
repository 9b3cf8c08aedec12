package intake_test

import (
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

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

const clientYAML = `
api:
  keys: ["k-0123456789abcdef"]
partners:
  - id: acme_ads
    events: [install, purchase]
    url: "https://acme.example/c?c={click_id}"
  - id: everyone
    match: all
    url: "https://all.example/c?e={event}"
  - id: big_spenders
    match: all
    when: 'revenue >= 100'
    url: "https://big.example/c?r={revenue}"
`

type clientBundle struct {
	client *intake.Client
	rdb    redis.UniversalClient
	store  *store.Store
	insp   *asynq.Inspector
}

func setupClient(t *testing.T, yaml string) clientBundle {
	t.Helper()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := intake.NewClient(intake.ClientConfig{Redis: rdb, Config: config.NewLive(stacktest.Config(t, yaml))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return clientBundle{client: c, rdb: rdb, store: store.New(rdb), insp: asynq.NewInspectorFromRedisClient(rdb)}
}

// taskIDs lists the pending delivery tasks.
func (b clientBundle) taskIDs(t *testing.T) []string {
	t.Helper()
	tasks, err := b.insp.ListPendingTasks(wire.QueueDefault, asynq.PageSize(1000))
	if err != nil && errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	require.NoError(t, err)
	ids := make([]string, len(tasks))
	for i, tk := range tasks {
		ids[i] = tk.ID
	}
	return ids
}

func TestClient_Enqueue_RoutesAndRecordsSkips(t *testing.T) {
	t.Parallel()
	b := setupClient(t, clientYAML)
	ctx := context.Background()
	ev := &event.Event{ID: "evt-1", Name: "purchase", Attribution: event.Attribution{Partner: "acme_ads"},
		Revenue: event.Revenue{Amount: "9.99", Currency: "USD"}}
	rc, err := b.client.Enqueue(ctx, ev)
	require.NoError(t, err)
	require.False(t, rc.Duplicate)
	require.Equal(t, []wire.Delivery{
		{ID: wire.DeliveryID("evt-1", "acme_ads"), Partner: "acme_ads", Status: "queued"},
		{ID: wire.DeliveryID("evt-1", "everyone"), Partner: "everyone", Status: "queued"},
		{ID: wire.DeliveryID("evt-1", "big_spenders"), Partner: "big_spenders", Status: "skipped", Reason: "when: condition is false"},
	}, rc.Deliveries)
	require.ElementsMatch(t, []string{rc.Deliveries[0].ID, rc.Deliveries[1].ID}, b.taskIDs(t))
	rec, err := b.store.Get(ctx, rc.Deliveries[2].ID)
	require.NoError(t, err)
	require.Equal(t, retry.StatusSkipped, rec.Status)
	require.Equal(t, "when: condition is false", rec.Reason)
	require.False(t, ev.Timestamp.IsZero(), "a missing timestamp is filled")
}

// An invalid IP is refused under api.strict only; by default the event is
// stored without it (see also TestClient_Enqueue_Normalizes). A required
// field is refused in both modes.
func TestClient_Enqueue_RefusesInvalidEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	strict := setupClient(t, strictYAML(clientYAML))
	_, err := strict.client.Enqueue(ctx, &event.Event{ID: "x", Name: "install", Device: event.Device{IP: "nope"}})
	var fe *event.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "device.ip", fe.Field)
	require.Empty(t, strict.taskIDs(t))

	b := setupClient(t, clientYAML)
	rc, err := b.client.Enqueue(ctx, &event.Event{ID: "x", Name: "install", Device: event.Device{IP: "nope"}})
	require.NoError(t, err)
	require.Equal(t, []event.Warning{{Field: "device.ip", Message: "not an IPv4 or IPv6 address; dropped"}}, rc.Warnings)
	require.Len(t, b.taskIDs(t), 1, "to everyone")

	for _, c := range []clientBundle{strict, b} {
		_, err = c.client.Enqueue(ctx, &event.Event{ID: "y"})
		require.ErrorAs(t, err, &fe)
		require.Equal(t, "name", fe.Field)
	}
	require.Empty(t, strict.taskIDs(t))
	require.Len(t, b.taskIDs(t), 1)
}

func TestClient_Enqueue_DuplicateReturnsFirstDeliveries(t *testing.T) {
	t.Parallel()
	b := setupClient(t, clientYAML)
	ctx := context.Background()
	first, err := b.client.Enqueue(ctx, &event.Event{ID: "evt-d", Name: "install", Attribution: event.Attribution{Partner: "acme_ads"}})
	require.NoError(t, err)
	// The repeat is attributed elsewhere: it still answers what the first
	// call routed, and enqueues nothing new.
	again, err := b.client.Enqueue(ctx, &event.Event{ID: "evt-d", Name: "install"})
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.Deliveries, again.Deliveries)
	require.Len(t, b.taskIDs(t), 2)
	// The dedup key is compact: a version byte, an 8-byte nonce and the
	// receipt's partners (delivery ids derive from them), with a TTL.
	key := store.EventKey("evt-d")
	stored, err := b.rdb.Get(ctx, key).Result()
	require.NoError(t, err)
	require.Greater(t, len(stored), 9)
	require.Equal(t, byte(2), stored[0])
	require.Equal(t, "acme_ads\neveryone\nbig_spenders\twhen: condition is false", stored[9:])
	ttl, err := b.rdb.PTTL(ctx, key).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 23*time.Hour)
}

// A claim stored as JSON by an earlier postback still answers repeats, with
// the delivery ids it holds.
func TestClient_Enqueue_ReadsJSONClaim(t *testing.T) {
	t.Parallel()
	b := setupClient(t, clientYAML)
	ctx := context.Background()
	id := wire.DeliveryID("evt-old", "acme_ads")
	old := `[{"id":"` + id + `","partner":"acme_ads","status":"queued"}]`
	require.NoError(t, b.rdb.Set(ctx, store.EventKey("evt-old"), old, time.Hour).Err())
	rc, err := b.client.Enqueue(ctx, &event.Event{ID: "evt-old", Name: "install"})
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	require.Equal(t, []wire.Delivery{{ID: id, Partner: "acme_ads", Status: "queued"}}, rc.Deliveries)
}

func TestClient_Enqueue_ConcurrentSameIDEnqueuesOnce(t *testing.T) {
	t.Parallel()
	b := setupClient(t, clientYAML)
	const n = 50
	var wg sync.WaitGroup
	receipts := make([]*intake.Receipt, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ev := &event.Event{ID: "evt-race", Name: "install", Attribution: event.Attribution{Partner: "acme_ads"}}
			receipts[i], errs[i] = b.client.Enqueue(context.Background(), ev)
		})
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, receipts[0].Deliveries, receipts[i].Deliveries)
		if !receipts[i].Duplicate {
			fresh++
		}
	}
	require.Equal(t, 1, fresh, "exactly one call is the first")
	require.ElementsMatch(t, []string{wire.DeliveryID("evt-race", "acme_ads"), wire.DeliveryID("evt-race", "everyone")}, b.taskIDs(t))
}

func TestClient_Enqueue_CompletesAHalfDoneEnqueue(t *testing.T) {
	t.Parallel()
	b := setupClient(t, clientYAML)
	ctx := context.Background()
	// A first call claimed the event and died before enqueuing anything.
	id := wire.DeliveryID("evt-half", "everyone")
	claim, err := b.store.ClaimEvent(ctx, "evt-half", []byte(`[{"id":"`+id+`","partner":"everyone","status":"queued"}]`), time.Hour)
	require.NoError(t, err)
	require.True(t, claim.New)
	require.Empty(t, b.taskIDs(t))

	rc, err := b.client.Enqueue(ctx, &event.Event{ID: "evt-half", Name: "install"})
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	require.Equal(t, []string{id}, b.taskIDs(t), "the repeat enqueued what the first call recorded")

	// A third call finds the task queued: its enqueue conflicts on the id.
	rc, err = b.client.Enqueue(ctx, &event.Event{ID: "evt-half", Name: "install"})
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	require.Equal(t, []string{id}, b.taskIDs(t))
}

func TestClient_Enqueue_RedisDownIsUnavailable(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	srv := redistest.Own(t, redistest.Options{})
	rdb, err := store.OpenRedis(srv.URL(0))
	require.NoError(t, err)
	defer rdb.Close()
	c, err := intake.NewClient(intake.ClientConfig{Redis: rdb, Config: config.NewLive(stacktest.Config(t, clientYAML))})
	require.NoError(t, err)
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Enqueue(ctx, &event.Event{ID: "evt-down", Name: "install"})
	require.ErrorIs(t, err, intake.ErrUnavailable)
	res := c.EnqueueBatch(ctx, []*event.Event{{ID: "a", Name: "install"}, {ID: "b", Name: "BAD"}})
	require.ErrorIs(t, res[0].Err, intake.ErrUnavailable)
	var fe *event.FieldError
	require.ErrorAs(t, res[1].Err, &fe, "an invalid event is refused without Redis")
}

func TestClient_EnqueueBatch(t *testing.T) {
	t.Parallel()
	b := setupClient(t, clientYAML)
	ctx := context.Background()
	_, err := b.client.Enqueue(ctx, &event.Event{ID: "seen", Name: "sign_up"})
	require.NoError(t, err)
	evs := []*event.Event{
		{ID: "b0", Name: "install"},
		{ID: "b1", Name: "Not Valid"},
		{ID: "seen", Name: "sign_up"},
		nil,
	}
	for i := range 60 {
		evs = append(evs, &event.Event{ID: fmt.Sprintf("many-%d", i), Name: "sign_up"})
	}
	res := b.client.EnqueueBatch(ctx, evs)
	require.Len(t, res, len(evs))
	require.NoError(t, res[0].Err)
	require.False(t, res[0].Receipt.Duplicate)
	require.Len(t, res[0].Receipt.Deliveries, 2)
	var fe *event.FieldError
	require.ErrorAs(t, res[1].Err, &fe)
	require.Equal(t, "name", fe.Field)
	require.NoError(t, res[2].Err)
	require.True(t, res[2].Receipt.Duplicate)
	require.Error(t, res[3].Err)
	for i := 4; i < len(evs); i++ {
		require.NoError(t, res[i].Err)
		require.Equal(t, evs[i].ID, res[i].Receipt.EventID)
		require.Equal(t, wire.DeliveryID(evs[i].ID, "everyone"), res[i].Receipt.Deliveries[0].ID)
	}
	// b0's and the 60 others' deliveries to everyone share bundles of at
	// most DefaultBundleSize; the repeat of seen has its own task, whose id
	// conflicts with the first call's (acme_ads and big_spenders skip).
	want := []string{wire.DeliveryID("b0", "everyone")}
	for i := range 60 {
		want = append(want, wire.DeliveryID(fmt.Sprintf("many-%d", i), "everyone"))
	}
	tasks, err := b.insp.ListPendingTasks(wire.QueueDefault, asynq.PageSize(1000))
	require.NoError(t, err)
	var bundled []string
	var sizes []int
	for _, tk := range tasks {
		ids, err := wire.TaskDeliveries(tk.Type, tk.Payload)
		require.NoError(t, err)
		if tk.Type == wire.TypeDeliver {
			require.Equal(t, []string{tk.ID}, ids, "a delivery's task id is its delivery id")
			require.Equal(t, wire.DeliveryID("seen", "everyone"), tk.ID)
			continue
		}
		require.Equal(t, wire.TypeDeliverBundle, tk.Type)
		sizes = append(sizes, len(ids))
		bundled = append(bundled, ids...)
	}
	require.ElementsMatch(t, []int{intake.DefaultBundleSize, 61 - intake.DefaultBundleSize}, sizes)
	require.ElementsMatch(t, want, bundled)
	require.Len(t, tasks, 3)
}

// TestClient_Enqueue_NoConsentStoresNoIdentifiers checks
// privacy.require_consent end to end: without consent the device ids, ip
// and email appear in no Redis key or value, neither in the task, the
// delivery record, the attempt history nor the dead-letter copy.
func TestClient_Enqueue_NoConsentStoresNoIdentifiers(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) }
	s := stacktest.New(t, `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: careful
    match: all
    privacy: {require_consent: true}
    url: "`+p.URL+`/c?idfa={idfa}&ip={ip}&email={email}&gaid={gaid}&idfv={idfv}&aid={android_id}&os={os}"
`, stacktest.Options{})
	secrets := []string{"6D92078A-8246-4BA4-AE5B-76104861E7DC", "AAAAAAAA-1111-2222-3333-444444444444",
		"38400000-8cf0-11bd-b23e-10b96e40000d", "a1b2c3d4e5f6a7b8", "198.51.100.23", "private@example.com"}
	ev := &event.Event{ID: "evt-private", Name: "install",
		Device: event.Device{IDFA: secrets[0], IDFV: secrets[1], GAID: secrets[2], AndroidID: secrets[3], IP: secrets[4], OS: "ios"},
		User:   event.User{Email: secrets[5]}}
	rc, err := s.Client.Enqueue(context.Background(), ev)
	require.NoError(t, err)
	require.Len(t, rc.Deliveries, 1)
	assertNowhere(t, s.Redis, secrets)

	// The partner refuses it: the dead letter keeps the (redacted) event.
	s.WaitStatus(t, rc.Deliveries[0].ID, retry.StatusDead, 10*time.Second)
	reqs := p.Requests()
	require.Len(t, reqs, 1)
	require.Equal(t, "/c?idfa=&ip=&email=&gaid=&idfv=&aid=&os=ios", reqs[0].URL)
	assertNowhere(t, s.Redis, secrets)
	n, err := s.Redis.ZCard(context.Background(), store.DLQKey("careful")).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

// assertNowhere fails when any Redis key or value contains one of secrets.
func assertNowhere(t *testing.T, rdb redis.UniversalClient, secrets []string) {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		var dump []string
		typ, err := rdb.Type(ctx, k).Result()
		require.NoError(t, err)
		switch typ {
		case "string":
			v, _ := rdb.Get(ctx, k).Result()
			dump = append(dump, v)
		case "hash":
			m, _ := rdb.HGetAll(ctx, k).Result()
			for f, v := range m {
				dump = append(dump, f, v)
			}
		case "list":
			dump, _ = rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			dump, _ = rdb.SMembers(ctx, k).Result()
		case "zset":
			dump, _ = rdb.ZRange(ctx, k, 0, -1).Result()
		case "stream":
			msgs, _ := rdb.XRange(ctx, k, "-", "+").Result()
			for _, m := range msgs {
				dump = append(dump, fmt.Sprint(m.Values))
			}
		}
		all := k + "\n" + strings.Join(dump, "\n")
		for _, s := range secrets {
			require.NotContains(t, strings.ToLower(all), strings.ToLower(s), "key %s (%s)", k, typ)
		}
	}
}

// failAsynq fails every command on asynq's keys while on: an enqueue that
// dies after the event's claim was stored.
type failAsynq struct{ on atomic.Bool }

func (f *failAsynq) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failAsynq) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.on.Load() {
			for _, a := range cmd.Args() {
				if s, ok := a.(string); ok && strings.HasPrefix(s, "asynq:") {
					cmd.SetErr(errors.New("injected: connection reset"))
					return cmd.Err()
				}
			}
		}
		return next(ctx, cmd)
	}
}

func (f *failAsynq) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestClient_Enqueue_RepeatHealsACrashBetweenClaimAndTasks(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	url := redistest.DB(t)
	s := stacktest.New(t, `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: everyone
    match: all
    url: "`+p.URL+`/c?e={event}"
`, stacktest.Options{RedisURL: url})
	ctx := context.Background()

	// The first call stores its claim, then its enqueue fails.
	rdb, err := store.OpenRedis(url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	fail := &failAsynq{}
	fail.on.Store(true)
	rdb.AddHook(fail)
	crashing, err := intake.NewClient(intake.ClientConfig{Redis: rdb, Config: s.Live, NoAutoPipeline: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = crashing.Close() })
	_, err = crashing.Enqueue(ctx, &event.Event{ID: "evt-crash", Name: "install"})
	require.ErrorIs(t, err, intake.ErrUnavailable, "not answered as accepted")
	n, err := s.Redis.Exists(ctx, store.EventKey("evt-crash")).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the claim was stored")

	// The repeat finds the claim, stores the task, and it is sent once.
	rc, err := s.Client.Enqueue(ctx, &event.Event{ID: "evt-crash", Name: "install"})
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	require.Len(t, rc.Deliveries, 1)
	s.WaitStatus(t, rc.Deliveries[0].ID, retry.StatusDelivered, 10*time.Second)
	s.WaitQueuesEmpty(t, 10*time.Second)

	// Later repeats answer the same and send nothing.
	for range 3 {
		again, err := s.Client.Enqueue(ctx, &event.Event{ID: "evt-crash", Name: "install"})
		require.NoError(t, err)
		require.True(t, again.Duplicate)
		require.Equal(t, rc.Deliveries, again.Deliveries)
	}
	s.WaitQueuesEmpty(t, 10*time.Second)
	require.Len(t, p.Requests(), 1, "the partner heard once")
}

// A repeat's tasks travel with its claim, before the claim says it is a
// repeat; whatever they find, they must send nothing the first call did
// not, and nothing twice.
func TestClient_Enqueue_RepeatSendsNothingMore(t *testing.T) {
	t.Parallel()
	acme, everyone, other := stacktest.NewPartner(t), stacktest.NewPartner(t), stacktest.NewPartner(t)
	yaml := strings.NewReplacer("ACME", acme.URL, "ALL", everyone.URL, "OTHER", other.URL).Replace(`
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: true}
partners:
  - id: acme_ads
    events: [install]
    url: "ACME/c"
  - id: everyone
    match: all
    url: "ALL/c"
  - id: other_net
    events: [install]
    url: "OTHER/c"
`)
	s := stacktest.New(t, yaml, stacktest.Options{NoWorker: true})
	ctx := context.Background()
	ev := func(partner string) *event.Event {
		return &event.Event{ID: "evt-rec", Name: "install", Attribution: event.Attribution{Partner: partner}}
	}
	first, err := s.Client.Enqueue(ctx, ev("acme_ads"))
	require.NoError(t, err)
	require.Len(t, first.Deliveries, 2)
	acmeD, everyoneD := first.Deliveries[0], first.Deliveries[1]

	// A worker took both up: acme's was delivered; everyone's died and is
	// being replayed (record queued, one replay, its task in the replay
	// queue).
	insp := asynq.NewInspectorFromRedisClient(s.Redis)
	for _, d := range first.Deliveries {
		require.NoError(t, insp.DeleteTask(wire.QueueDefault, d.ID))
	}
	now := time.Now()
	require.NoError(t, s.Store.SetStatus(ctx, store.Meta{ID: acmeD.ID, Partner: "acme_ads", EventID: "evt-rec"}, retry.StatusDelivered, "", now, time.Hour))
	require.NoError(t, s.Store.SetStatus(ctx, store.Meta{ID: everyoneD.ID, Partner: "everyone", EventID: "evt-rec"}, retry.StatusQueued, "", now, time.Hour))
	require.NoError(t, s.Redis.HSet(ctx, store.DeliveryKey(everyoneD.ID), "replays", 1).Err())

	// The repeats answer the first receipt. One is attributed to another
	// network: the first receipt did not send to it, so neither may this.
	for _, partner := range []string{"acme_ads", "other_net"} {
		again, err := s.Client.Enqueue(ctx, ev(partner))
		require.NoError(t, err)
		require.True(t, again.Duplicate)
		require.Equal(t, first.Deliveries, again.Deliveries)
	}

	w, err := delivery.NewWorker(delivery.WorkerConfig{Redis: s.Redis, Config: s.Live, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	t.Cleanup(w.Shutdown)
	s.WaitQueuesEmpty(t, 10*time.Second)
	require.Empty(t, acme.Requests(), "delivered already")
	require.Empty(t, everyone.Requests(), "its replay task sends it, not a repeat's")
	require.Empty(t, other.Requests(), "not in the first receipt")
}

func TestClient_EnqueueBatch_RepeatsInOneBatch(t *testing.T) {
	t.Parallel()
	b := setupClient(t, clientYAML)
	ctx := context.Background()
	// evt-half was claimed by a call that died before its task.
	half := wire.DeliveryID("evt-half", "everyone")
	_, err := b.store.ClaimEvent(ctx, "evt-half", []byte(`[{"id":"`+half+`","partner":"everyone","status":"queued"}]`), time.Hour)
	require.NoError(t, err)
	res := b.client.EnqueueBatch(ctx, []*event.Event{
		{ID: "twice", Name: "install"},
		{ID: "evt-half", Name: "install"},
		{ID: "twice", Name: "install"},
	})
	for _, r := range res {
		require.NoError(t, r.Err)
	}
	require.False(t, res[0].Receipt.Duplicate)
	require.True(t, res[1].Receipt.Duplicate)
	require.True(t, res[2].Receipt.Duplicate, "the second of one id in a batch is its duplicate")
	require.Equal(t, res[0].Receipt.Deliveries, res[2].Receipt.Deliveries)
	require.ElementsMatch(t, []string{wire.DeliveryID("twice", "everyone"), half}, b.taskIDs(t))
}
