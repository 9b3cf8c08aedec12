package ops_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// eraseYAML has three partners whose URLs carry every personal field, in
// clear and hashed: ok answers 200, dead 400 (a dead letter), later as
// the test says (a retry scheduled 30 s out, or a bundle held in flight).
const eraseYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
  attempt_log_retention: 48h
partners:
  - id: ok
    match: all
    url: "OK/c/{customer_user_id}?e={event_id}&idfa={idfa}&gaid={gaid}&em={email|sha256}&m5={email|md5}&u={customer_user_id}&ip={ip}&ua={user_agent}&c={campaign}&r={revenue}"
  - id: dead
    match: all
    url: "DEAD/c/{customer_user_id}?e={event_id}&em={email}&idfa={idfa|md5}&u={customer_user_id|sha256}&c={campaign}"
  - id: later
    match: all
    url: "LATER/c?e={event_id}&em={email}&idfa={idfa}&ip={ip}&u={customer_user_id}&c={campaign}&r={revenue}"
    retry: {max_attempts: 10, initial_interval: 30s, max_interval: 60s, multiplier: 2}
`

// The user erased and another, whose data must stay.
const (
	userEmail = "erase.me@example.com"
	userIDFA  = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
	userCUID  = "cust-erase-7f3a9c"
	userIP    = "198.51.100.77"
	userUA    = "ErasedAgent/9.1 (Pixel 42)"
	otherCUID = "cust-keep-2b8e41"
)

func userEvent(id string) *event.Event {
	ev := &event.Event{ID: id, Name: "purchase", Revenue: event.Revenue{Amount: "4.99", Currency: "USD"}}
	ev.Attribution.Campaign = "winter"
	ev.Device.IDFA, ev.Device.IP, ev.Device.UserAgent = userIDFA, userIP, userUA
	ev.User.Email, ev.User.CustomerUserID = userEmail, userCUID
	return ev
}

func otherEvent(id string) *event.Event {
	ev := &event.Event{ID: id, Name: "purchase", Revenue: event.Revenue{Amount: "1.00", Currency: "USD"}}
	ev.Attribution.Campaign = "winter"
	ev.Device.IP = "203.0.113.9"
	ev.User.Email, ev.User.CustomerUserID = "keep.me@example.com", otherCUID
	return ev
}

type eraseBundle struct {
	stack *stacktest.Stack
	ok    *stacktest.Partner
	later *stacktest.Partner
	// laterOK makes later answer 200; before, it answers 503, after
	// waiting on hold when that is set.
	laterOK *atomic.Bool
	hold    chan struct{}
	release func() // closes hold, once
	eraser  *ops.Eraser
}

func setupErase(t *testing.T, hold bool) eraseBundle {
	t.Helper()
	b := eraseBundle{laterOK: &atomic.Bool{}}
	if hold {
		b.hold = make(chan struct{})
	}
	b.ok = stacktest.NewPartner(t)
	dead := stacktest.NewPartner(t)
	dead.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("unknown user " + r.URL.Query().Get("em")))
	}
	b.later = stacktest.NewPartner(t)
	var once sync.Once
	b.release = func() {
		if b.hold != nil {
			once.Do(func() { close(b.hold) })
		}
	}
	t.Cleanup(b.release) // before the partner closes: it waits for its handlers
	b.later.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		if b.laterOK.Load() {
			_, _ = w.Write([]byte("ok"))
			return
		}
		if b.hold != nil {
			<-b.hold
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("busy, " + r.URL.Query().Get("em")))
	}
	yaml := strings.NewReplacer("OK/", b.ok.URL+"/", "DEAD/", dead.URL+"/", "LATER/", b.later.URL+"/").Replace(eraseYAML)
	b.stack = stacktest.New(t, yaml, stacktest.Options{})
	var err error
	b.eraser, err = ops.NewEraser(ops.EraseConfig{Redis: b.stack.Redis, Retention: 48 * time.Hour, Settle: 50 * time.Millisecond})
	require.NoError(t, err)
	return b
}

// erase erases the user by email, given as a user might type it.
func (b eraseBundle) erase(t *testing.T) *store.Erasure {
	t.Helper()
	sub, err := event.NewSubject(event.SubjectEmail, "  Erase.Me@Example.COM ")
	require.NoError(t, err)
	ctx := context.Background()
	e, err := b.eraser.Start(ctx, sub)
	require.NoError(t, err)
	e, err = b.eraser.Run(ctx, e, sub)
	require.NoError(t, err)
	require.Equal(t, "done", e.Status)
	return e
}

// forms are the user's values as a search of Redis looks for them: in
// clear and as sha256 and md5 hex, in both cases, and URL-escaped.
func userForms() []string {
	var out []string
	for _, v := range []string{userEmail, userIDFA, userCUID, userIP, userUA} {
		for _, c := range []string{v, strings.ToLower(v), strings.ToUpper(v)} {
			s, m := sha256.Sum256([]byte(c)), md5.Sum([]byte(c))
			out = append(out, c, hex.EncodeToString(s[:]), hex.EncodeToString(m[:]), url.QueryEscape(c))
		}
	}
	return out
}

// dump returns every key of the database with every value it holds, as
// text: strings, lists, sets, sorted sets and hashes (asynq's task
// messages included, in their binary form).
func dump(t *testing.T, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		var parts []string
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			parts = []string{rdb.Get(ctx, k).Val()}
		case "list":
			parts = rdb.LRange(ctx, k, 0, -1).Val()
		case "set":
			parts = rdb.SMembers(ctx, k).Val()
		case "zset":
			parts = rdb.ZRange(ctx, k, 0, -1).Val()
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				parts = append(parts, f+"="+v)
			}
			slices.Sort(parts)
		case "none":
			continue // gone since the scan saw it (a lease freed)
		default:
			t.Fatalf("key %s of type %s", k, typ)
		}
		out[k] = strings.Join(parts, "\n")
	}
	require.NoError(t, iter.Err())
	return out
}

// requireNoTrace fails when any key or value holds one of the user's forms.
func requireNoTrace(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	forms := userForms()
	for k, v := range dump(t, rdb) {
		lk, lv := strings.ToLower(k), strings.ToLower(v)
		for _, f := range forms {
			lf := strings.ToLower(f)
			require.NotContains(t, lk, lf, "key %s", k)
			require.NotContains(t, lv, lf, "a value of key %s", k)
		}
	}
}

// requireTrace fails unless something in Redis holds s: the check above
// is not vacuous.
func requireTrace(t *testing.T, rdb redis.UniversalClient, s string) {
	t.Helper()
	for _, v := range dump(t, rdb) {
		if strings.Contains(strings.ToLower(v), strings.ToLower(s)) {
			return
		}
	}
	t.Fatalf("nothing in Redis holds %q", s)
}

func TestEraser_Run_RetryScheduled(t *testing.T) {
	b := setupErase(t, false)
	ctx := context.Background()
	rc, err := b.stack.Client.Enqueue(ctx, userEvent("evt-user-1"))
	require.NoError(t, err)
	_, err = b.stack.Client.Enqueue(ctx, otherEvent("evt-other-1"))
	require.NoError(t, err)
	ids := map[string]string{}
	for _, d := range rc.Deliveries {
		ids[d.Partner] = d.ID
	}
	b.stack.WaitStatus(t, ids["ok"], retry.StatusDelivered, 10*time.Second)
	b.stack.WaitStatus(t, ids["dead"], retry.StatusDead, 10*time.Second)
	b.stack.WaitStatus(t, ids["later"], retry.StatusRetrying, 10*time.Second)
	for _, f := range []string{userEmail, userIDFA, userCUID, userIP} {
		requireTrace(t, b.stack.Redis, f)
	}

	e := b.erase(t)
	requireNoTrace(t, b.stack.Redis)
	require.Equal(t, int64(3), e.Deliveries)
	require.Equal(t, int64(1), e.DeadLetters)
	require.GreaterOrEqual(t, e.Tasks, int64(1))

	// The other user's data and the event's other fields stay.
	requireTrace(t, b.stack.Redis, otherCUID)
	dl, err := b.stack.Store.GetDeadLetter(ctx, ids["dead"])
	require.NoError(t, err)
	pl, err := wire.DecodePayload(dl.Payload)
	require.NoError(t, err)
	require.Equal(t, "winter", pl.Event.Attribution.Campaign)
	require.Equal(t, event.Decimal("4.99"), pl.Event.Revenue.Amount)
	require.Empty(t, pl.Event.User.Email)
	require.Equal(t, retry.StatusDead, dl.Status)
	atts, err := b.stack.Store.Attempts(ctx, ids["ok"])
	require.NoError(t, err)
	require.Len(t, atts, 1)
	require.Contains(t, atts[0].URL, "&c=&r=", "query values go, keys stay")

	// The retry still goes out, without the user's fields.
	b.laterOK.Store(true)
	before := len(b.later.Requests())
	insp := asynq.NewInspectorFromRedisClient(b.stack.Redis)
	require.NoError(t, insp.RunTask(wire.QueueDefault, ids["later"]))
	got := b.later.WaitRequests(t, before+1, 10*time.Second)[before]
	require.Contains(t, got.URL, "c=winter")
	require.Contains(t, got.URL, "r=4.99")
	require.Contains(t, got.URL, "em=&idfa=&ip=&u=&")
	b.stack.WaitStatus(t, ids["later"], retry.StatusDelivered, 10*time.Second)
	requireNoTrace(t, b.stack.Redis)
}

func TestEraser_Run_BundleInFlight(t *testing.T) {
	b := setupErase(t, true)
	ctx := context.Background()
	res := b.stack.Client.EnqueueBatch(ctx, []*event.Event{userEvent("evt-user-b1"), otherEvent("evt-other-b1"), userEvent("evt-user-b2")})
	require.Len(t, res, 3)
	for _, r := range res {
		require.NoError(t, r.Err)
	}
	// The later partner holds the bundle's first request: the bundle is in
	// flight, its payload (the user's) in the worker's memory.
	b.later.WaitRequests(t, 1, 10*time.Second)

	done := make(chan *store.Erasure, 1)
	go func() { done <- b.erase(t) }()
	select {
	case <-done:
		t.Fatal("the erasure ended while a bundle of the user's was in flight")
	case <-time.After(6 * time.Second):
		// Past asynq's heartbeat (5 s), which lists the bundle, with its
		// payload, among what its workers run.
	}
	b.release() // the bundle's deliveries fail and are handed off to their own tasks
	var e *store.Erasure
	select {
	case e = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the erasure did not end")
	}
	require.Equal(t, int64(6), e.Deliveries)
	requireNoTrace(t, b.stack.Redis)
	requireTrace(t, b.stack.Redis, otherCUID)
}

func TestEraser_Run_KeepsRetention(t *testing.T) {
	b := setupErase(t, false)
	ctx := context.Background()
	rc, err := b.stack.Client.Enqueue(ctx, userEvent("evt-user-r1"))
	require.NoError(t, err)
	for _, d := range rc.Deliveries {
		if d.Partner == "ok" {
			b.stack.WaitStatus(t, d.ID, retry.StatusDelivered, 10*time.Second)
		}
	}
	e := b.erase(t)
	retention := 48 * time.Hour
	for k := range dump(t, b.stack.Redis) {
		if !strings.HasPrefix(k, store.Prefix+"d:") && !strings.HasPrefix(k, store.Prefix+"a:") && !strings.HasPrefix(k, store.Prefix+"er") {
			continue
		}
		ttl := b.stack.Redis.PTTL(ctx, k).Val()
		if dead := b.stack.Redis.HGet(ctx, k, "status").Val() == "dead"; dead || strings.HasPrefix(k, store.Prefix+"a:") && b.stack.Redis.HGet(ctx, store.Prefix+"d:"+strings.TrimPrefix(k, store.Prefix+"a:"), "status").Val() == "dead" {
			require.Equal(t, time.Duration(-1), ttl, "a dead letter stays until purged: %s", k)
			continue
		}
		require.Greater(t, ttl, time.Duration(0), "key %s has no expiry", k)
		require.LessOrEqual(t, ttl, retention, "key %s outlives attempt_log_retention", k)
	}
	require.Greater(t, b.stack.Redis.PTTL(ctx, store.ErasureKey(e.ID)).Val(), time.Duration(0))
	require.Zero(t, b.stack.Redis.Exists(ctx, store.ErasureTodoKey(e.ID)).Val())
	_, err = b.stack.Redis.ZScore(ctx, store.ErasuresKey, e.ID).Result()
	require.NoError(t, err, "the index lists the erasure")
	got, err := b.eraser.Get(ctx, e.ID)
	require.NoError(t, err)
	require.False(t, got.Finished.Before(got.Started))
	require.Equal(t, "email", got.Kind)
	require.Len(t, got.HMAC, 64)
}

func TestEraser_DryRun_WritesNothing(t *testing.T) {
	b := setupErase(t, false)
	ctx := context.Background()
	rc, err := b.stack.Client.Enqueue(ctx, userEvent("evt-user-d1"))
	require.NoError(t, err)
	for _, d := range rc.Deliveries {
		if d.Partner == "dead" {
			b.stack.WaitStatus(t, d.ID, retry.StatusDead, 10*time.Second)
		}
	}
	before := dump(t, b.stack.Redis)
	sub, err := event.NewSubject(event.SubjectDeviceID, strings.ToLower(userIDFA))
	require.NoError(t, err)
	e, err := b.eraser.DryRun(ctx, sub)
	require.NoError(t, err)
	require.Equal(t, int64(3), e.Deliveries)
	require.Equal(t, int64(1), e.DeadLetters)
	require.Equal(t, before[store.DeliveryKey(rc.Deliveries[1].ID)], dump(t, b.stack.Redis)[store.DeliveryKey(rc.Deliveries[1].ID)])
	requireTrace(t, b.stack.Redis, userEmail)
}

func TestEraser_Start_ResumesTheSameErasure(t *testing.T) {
	b := setupErase(t, false)
	ctx := context.Background()
	rc, err := b.stack.Client.Enqueue(ctx, userEvent("evt-user-s1"))
	require.NoError(t, err)
	for _, d := range rc.Deliveries {
		if d.Partner == "dead" {
			b.stack.WaitStatus(t, d.ID, retry.StatusDead, 10*time.Second)
		}
	}
	sub, err := event.NewSubject(event.SubjectCustomerUserID, userCUID)
	require.NoError(t, err)
	first, err := b.eraser.Start(ctx, sub)
	require.NoError(t, err)
	// Its process holds it, then dies: another waits for the lease.
	require.NoError(t, b.stack.Redis.Set(ctx, store.ErasureLeaseKey(first.ID), "a dead process", time.Minute).Err())
	again, err := b.eraser.Start(ctx, sub)
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID, "asking again finds the running erasure by its HMAC")
	_, err = b.eraser.Run(ctx, again, sub)
	require.ErrorIs(t, err, ops.ErrErasureBusy)

	require.NoError(t, b.stack.Redis.Del(ctx, store.ErasureLeaseKey(first.ID)).Err()) // the lease ran out
	other, err := event.NewSubject(event.SubjectCustomerUserID, otherCUID)
	require.NoError(t, err)
	o, err := b.eraser.Start(ctx, other)
	require.NoError(t, err)
	require.NotEqual(t, first.ID, o.ID, "another identifier is another erasure")
	done, err := b.eraser.Run(ctx, again, sub)
	require.NoError(t, err)
	require.Equal(t, "done", done.Status)
	require.Equal(t, first.ID, done.ID)
	require.Equal(t, int64(1), done.DeadLetters)
	got, err := b.eraser.Get(ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, "done", got.Status)
	requireNoTrace(t, b.stack.Redis)
}
