package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// lifecycleConfig is a stack whose partner acme has the lifecycle keys
// extra, with quick retries.
func lifecycleConfig(url, extra string) string {
	return `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: acme
    url: "` + url + `/pb?event={event}&click={click_id}&tx={transaction_id}&status={status}&id={event_id}"
    retry: {max_attempts: 6, initial_interval: 300ms, max_interval: 300ms, jitter: 0}
` + extra
}

func post(t *testing.T, s *stacktest.Stack, body string) {
	t.Helper()
	status, resp := s.Post(t, "/v1/events", "application/json", body)
	require.Equal(t, http.StatusAccepted, status, resp)
}

// eventsOf is the event names of the requests, in arrival order.
func eventsOf(reqs []stacktest.Received) []string {
	var out []string
	for _, r := range reqs {
		q := r.URL[strings.Index(r.URL, "?")+1:]
		for _, kv := range strings.Split(q, "&") {
			if v, ok := strings.CutPrefix(kv, "event="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// An install that needs three attempts reaches the partner before the
// purchase of the same click posted after it: the purchase waits for its
// turn without spending an attempt. Another click's purchase does not wait.
func TestOrderBy_InstallBeforePurchase(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	var mu sync.Mutex
	installs := 0
	partner.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("event") == "install" && r.URL.Query().Get("click") == "ck-1" {
			mu.Lock()
			installs++
			n := installs
			mu.Unlock()
			if n < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok"))
	}
	s := stacktest.New(t, lifecycleConfig(partner.URL, "    order_by: click_id\n"), stacktest.Options{})
	post(t, s, `{"id":"o-install","name":"install","click_id":"ck-1","attribution":{"partner":"acme"}}`)
	post(t, s, `{"id":"o-purchase","name":"purchase","click_id":"ck-1","attribution":{"partner":"acme"}}`)
	post(t, s, `{"id":"o-other","name":"purchase","click_id":"ck-2","attribution":{"partner":"acme"}}`)

	purchase := s.WaitStatus(t, wire.DeliveryID("o-purchase", "acme"), retry.StatusDelivered, 20*time.Second)
	require.Equal(t, 1, purchase.Attempts, "waiting for its turn spends no attempt")
	install := s.WaitStatus(t, wire.DeliveryID("o-install", "acme"), retry.StatusDelivered, 5*time.Second)
	require.Equal(t, 3, install.Attempts)
	s.WaitStatus(t, wire.DeliveryID("o-other", "acme"), retry.StatusDelivered, 5*time.Second)

	var ck1 []string
	for _, r := range partner.Requests() {
		if strings.Contains(r.URL, "click=ck-1") {
			ck1 = append(ck1, eventsOf([]stacktest.Received{r})...)
		}
	}
	require.Equal(t, []string{"install", "install", "install", "purchase"}, ck1)
	// The other click's purchase did not wait for ck-1's install.
	reqs := partner.Requests()
	require.Less(t, indexOf(reqs, "click=ck-2"), indexOf(reqs, "event=purchase&click=ck-1"))
}

func indexOf(reqs []stacktest.Received, part string) int {
	for i, r := range reqs {
		if strings.Contains(r.URL, part) {
			return i
		}
	}
	return -1
}

// An earlier delivery that ends dead does not block the later one.
func TestOrderBy_DeadEarlierReleasesLater(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	partner.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("event") == "install" {
			w.WriteHeader(http.StatusBadRequest) // rejected: dead at once
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	s := stacktest.New(t, lifecycleConfig(partner.URL, "    order_by: click_id\n"), stacktest.Options{})
	post(t, s, `{"id":"d-install","name":"install","click_id":"ck-d","attribution":{"partner":"acme"}}`)
	post(t, s, `{"id":"d-purchase","name":"purchase","click_id":"ck-d","attribution":{"partner":"acme"}}`)
	s.WaitStatus(t, wire.DeliveryID("d-install", "acme"), retry.StatusDead, 10*time.Second)
	s.WaitStatus(t, wire.DeliveryID("d-purchase", "acme"), retry.StatusDelivered, 10*time.Second)
	require.Equal(t, []string{"install", "purchase"}, eventsOf(partner.Requests()))
}

// A bundle holding deliveries of one click sends them in order, the
// later one after the earlier is final, even when the earlier needs a
// retry.
func TestOrderBy_Bundle(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	partner.Respond = func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	s := stacktest.New(t, lifecycleConfig(partner.URL, "    order_by: click_id\n"), stacktest.Options{})
	var evs []*event.Event
	for i, name := range []string{"install", "registration", "purchase"} {
		evs = append(evs, &event.Event{ID: fmt.Sprintf("b-%d", i), Name: name, ClickID: "ck-b",
			Attribution: event.Attribution{Partner: "acme"}})
	}
	for _, r := range s.Client.EnqueueBatch(context.Background(), evs) {
		require.NoError(t, r.Err)
	}
	for _, ev := range evs {
		s.WaitStatus(t, wire.DeliveryID(ev.ID, "acme"), retry.StatusDelivered, 20*time.Second)
	}
	require.Equal(t, []string{"install", "install", "registration", "purchase"}, eventsOf(partner.Requests()))
}

// A rejection 0.5 s after its sale, under a 3 s delay, cancels both:
// nothing is sent, both are skipped rejected_before_send. Once a sale was
// sent, its rejection is sent as any event.
func TestCancelOnReject(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	s := stacktest.New(t, lifecycleConfig(partner.URL, "    delay: 3s\n    cancel_on_reject: true\n"), stacktest.Options{})
	post(t, s, `{"id":"sale-1","name":"purchase","transaction_id":"ord-1","attribution":{"partner":"acme"}}`)
	st, err := ops.ReadStats(context.Background(), s.Redis, s.Live.Load(), "acme", time.Now())
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Partners[0].Held, "held apart from scheduled")
	require.Zero(t, st.Partners[0].Scheduled)
	time.Sleep(500 * time.Millisecond)
	post(t, s, `{"id":"sale-1-rejected","name":"purchase","transaction_id":"ord-1","status":"rejected","attribution":{"partner":"acme"}}`)

	sale := s.WaitStatus(t, wire.DeliveryID("sale-1", "acme"), retry.StatusSkipped, 15*time.Second)
	rejection := s.WaitStatus(t, wire.DeliveryID("sale-1-rejected", "acme"), retry.StatusSkipped, 15*time.Second)
	require.Equal(t, "rejected_before_send: cancelled with "+wire.DeliveryID("sale-1-rejected", "acme"), sale.Reason)
	require.Equal(t, "rejected_before_send: cancelled with "+wire.DeliveryID("sale-1", "acme"), rejection.Reason)
	require.Zero(t, sale.Attempts)
	require.Empty(t, partner.Requests())
	counts, err := s.Store.Counts(context.Background(), "acme", time.Now(), time.Hour)
	require.NoError(t, err)
	require.EqualValues(t, 2, counts.SkippedBy["rejected_before_send"])

	// Sent first, then rejected: the rejection goes out too, after its delay.
	post(t, s, `{"id":"sale-2","name":"purchase","transaction_id":"ord-2","attribution":{"partner":"acme"}}`)
	s.WaitStatus(t, wire.DeliveryID("sale-2", "acme"), retry.StatusDelivered, 15*time.Second)
	post(t, s, `{"id":"sale-2-rejected","name":"purchase","transaction_id":"ord-2","status":"rejected","attribution":{"partner":"acme"}}`)
	s.WaitStatus(t, wire.DeliveryID("sale-2-rejected", "acme"), retry.StatusDelivered, 15*time.Second)
	reqs := partner.Requests()
	require.Len(t, reqs, 2)
	require.Contains(t, reqs[1].URL, "status=rejected")
}

// Events more than the window after their click (else install) are
// skipped; an event without either time is sent.
func TestWindow(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	s := stacktest.New(t, lifecycleConfig(partner.URL, "    window: 7d\n"), stacktest.Options{})
	post(t, s, `{"id":"w-late","name":"purchase","timestamp":"2026-11-30T12:00:00Z","attribution":{"partner":"acme","click_time":"2026-11-20T12:00:00Z"}}`)
	post(t, s, `{"id":"w-install","name":"purchase","timestamp":"2026-11-30T12:00:00Z","attribution":{"partner":"acme","install_time":"2026-11-29T12:00:00Z"}}`)
	post(t, s, `{"id":"w-none","name":"purchase","attribution":{"partner":"acme"}}`)
	late := s.WaitStatus(t, wire.DeliveryID("w-late", "acme"), retry.StatusSkipped, 10*time.Second)
	require.Equal(t, "outside_window: 240h after the click, window 168h", late.Reason)
	// Counted once the record is written: look until it is.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(metrics.Deliveries.WithLabelValues("acme", "outside_window")) >= 1
	}, 5*time.Second, 10*time.Millisecond)
	s.WaitStatus(t, wire.DeliveryID("w-install", "acme"), retry.StatusDelivered, 10*time.Second)
	s.WaitStatus(t, wire.DeliveryID("w-none", "acme"), retry.StatusDelivered, 10*time.Second)
	require.Len(t, partner.Requests(), 2)
}

const dedupKeys = "    dedup: {key: \"{click_id}:{event}:{transaction_id}\", window: 24h}\n"

// A conversion repeated under another event id is skipped, naming the
// delivery it repeats; one whose first delivery ended dead is sent.
func TestDedup(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	partner.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("tx") == "bad" && r.URL.Query().Get("id") == "dd-bad-1" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	s := stacktest.New(t, lifecycleConfig(partner.URL, dedupKeys), stacktest.Options{})
	post(t, s, `{"id":"dd-1","name":"purchase","click_id":"c","transaction_id":"t1","attribution":{"partner":"acme"}}`)
	first := wire.DeliveryID("dd-1", "acme")
	s.WaitStatus(t, first, retry.StatusDelivered, 10*time.Second)
	post(t, s, `{"id":"dd-2","name":"purchase","click_id":"c","transaction_id":"t1","attribution":{"partner":"acme"}}`)
	dup := s.WaitStatus(t, wire.DeliveryID("dd-2", "acme"), retry.StatusSkipped, 10*time.Second)
	require.Equal(t, "duplicate_conversion: repeats delivery "+first, dup.Reason)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(metrics.Deliveries.WithLabelValues("acme", "duplicate_conversion")) >= 1
	}, 5*time.Second, 10*time.Millisecond)
	counts, err := s.Store.Counts(context.Background(), "acme", time.Now(), time.Hour)
	require.NoError(t, err)
	require.EqualValues(t, 1, counts.SkippedBy["duplicate_conversion"])

	post(t, s, `{"id":"dd-bad-1","name":"purchase","click_id":"c","transaction_id":"bad","attribution":{"partner":"acme"}}`)
	s.WaitStatus(t, wire.DeliveryID("dd-bad-1", "acme"), retry.StatusDead, 10*time.Second)
	post(t, s, `{"id":"dd-bad-2","name":"purchase","click_id":"c","transaction_id":"bad","attribution":{"partner":"acme"}}`)
	s.WaitStatus(t, wire.DeliveryID("dd-bad-2", "acme"), retry.StatusDelivered, 10*time.Second)
	require.Len(t, partner.Requests(), 3)
}

// The same delivery retried, or replayed from the DLQ, is never its own
// duplicate.
func TestDedup_RetryAndReplay(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	var ok atomic.Bool
	partner.Respond = func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 || r.URL.Query().Get("tx") == "dead" && !ok.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
	s := stacktest.New(t, lifecycleConfig(partner.URL, dedupKeys), stacktest.Options{})
	post(t, s, `{"id":"rr-1","name":"purchase","click_id":"c","transaction_id":"t","attribution":{"partner":"acme"}}`)
	rec := s.WaitStatus(t, wire.DeliveryID("rr-1", "acme"), retry.StatusDelivered, 10*time.Second)
	require.Equal(t, 2, rec.Attempts)

	post(t, s, `{"id":"rr-dead","name":"purchase","click_id":"c","transaction_id":"dead","attribution":{"partner":"acme"}}`)
	dead := wire.DeliveryID("rr-dead", "acme")
	s.WaitStatus(t, dead, retry.StatusDead, 20*time.Second)
	ok.Store(true)
	dlq, err := ops.NewDLQ(ops.DLQConfig{Redis: s.Redis, Config: s.Live})
	require.NoError(t, err)
	_, err = dlq.Replay(context.Background(), ops.Selection{IDs: []string{dead}}, ops.ReplayOptions{})
	require.NoError(t, err)
	s.WaitStatus(t, dead, retry.StatusDelivered, 10*time.Second)
}

// Fifty deliveries of one dedup key at once, across two workers: exactly
// one is sent, every other skipped as its duplicate.
func TestDedup_Concurrent(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	partner.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond) // in flight while the others look
		_, _ = w.Write([]byte("ok"))
	}
	cfg := lifecycleConfig(partner.URL, dedupKeys)
	s := stacktest.New(t, cfg, stacktest.Options{NoWorker: true})
	// Two workers on the same Redis.
	stacktest.New(t, cfg, stacktest.Options{RedisURL: s.RedisURL})
	stacktest.New(t, cfg, stacktest.Options{RedisURL: s.RedisURL})
	var evs []*event.Event
	for i := range 50 {
		evs = append(evs, &event.Event{ID: fmt.Sprintf("dc-%02d", i), Name: "purchase", ClickID: "c", TransactionID: "t",
			Attribution: event.Attribution{Partner: "acme"}})
	}
	var wg sync.WaitGroup
	for _, ev := range evs {
		wg.Go(func() {
			_, err := s.Client.Enqueue(context.Background(), ev)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	var delivered, skipped int
	for _, ev := range evs {
		id := wire.DeliveryID(ev.ID, "acme")
		deadline := time.Now().Add(20 * time.Second)
		for {
			rec, err := s.Store.Get(context.Background(), id)
			if err == nil && rec.Status.Final() {
				switch rec.Status {
				case retry.StatusDelivered:
					delivered++
				case retry.StatusSkipped:
					require.True(t, strings.HasPrefix(rec.Reason, "duplicate_conversion: repeats delivery "), rec.Reason)
					skipped++
				}
				break
			}
			require.True(t, time.Now().Before(deadline), "delivery %s not final", id)
			time.Sleep(20 * time.Millisecond)
		}
	}
	require.Equal(t, 1, delivered)
	require.Equal(t, 49, skipped)
	require.Len(t, partner.Requests(), 1)
}

// A delivery whose intake failed after it took its place in its
// sequence (no task, no record) does not block the ones after it: the
// first turn check that meets it drops it. One still queued does block.
func TestOrderBy_StrandedEarlierIsDropped(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	s := stacktest.New(t, lifecycleConfig(partner.URL, "    order_by: click_id\n"), stacktest.Options{})
	key := store.OrderKey("acme", store.Seq("ck-s"))
	require.NoError(t, s.Store.OrderJoin(context.Background(), key, "dlv_stranded", "dlv_stranded", time.Hour))
	post(t, s, `{"id":"s-purchase","name":"purchase","click_id":"ck-s","attribution":{"partner":"acme"}}`)
	s.WaitStatus(t, wire.DeliveryID("s-purchase", "acme"), retry.StatusDelivered, 10*time.Second)
	require.Contains(t, s.Logs(), "dropped a stranded delivery from its sequence")

	turn, err := s.Store.OrderTurn(context.Background(), key, "dlv_other")
	require.NoError(t, err)
	require.Empty(t, turn.Blocker, "a delivery in no sequence goes")
}
