package ops_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// The measurements behind the choice of a scan over an index (see
// docs/design.md). They build 100,000 deliveries, so they run only with
// POSTBACK_ERASE_MEASURE=1:
//
//	POSTBACK_ERASE_MEASURE=1 go test -count=1 -run TestMeasure -v ./internal/ops/
func measureOnly(t *testing.T) {
	if os.Getenv("POSTBACK_ERASE_MEASURE") == "" {
		t.Skip("set POSTBACK_ERASE_MEASURE=1 to measure")
	}
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
}

const measureYAML = `
api:
  keys: ["${api_key}"]
partners:
  - id: p1
    match: all
    url: "https://partner.example/c?e={event_id}&em={email|sha256}&u={customer_user_id}&idfa={idfa}"
`

// TestMeasure_EraseAmong100k times the erasure of a user with 1,000
// deliveries among 100,000: 90,000 delivered (a record and one attempt
// each) and 10,000 pending (in bundles, as batches store them). Two such
// users: one erased unthrottled, the other at the default rate.
func TestMeasure_EraseAmong100k(t *testing.T) {
	measureOnly(t)
	s := stacktest.New(t, measureYAML, stacktest.Options{NoWorker: true})
	ctx := context.Background()
	const delivered, pending, userEvery = 90000, 10000, 100
	mkEvent := func(i int) *event.Event {
		ev := &event.Event{ID: fmt.Sprintf("evt-%06d", i), Name: "purchase", Revenue: event.Revenue{Amount: "1.00", Currency: "USD"}}
		ev.User.CustomerUserID = fmt.Sprintf("cust-%06d", i)
		ev.User.Email = fmt.Sprintf("user%06d@example.com", i)
		switch i % userEvery {
		case 0:
			ev.User.CustomerUserID, ev.User.Email = "cust-measured", "measured@example.com"
		case userEvery / 2:
			ev.User.CustomerUserID, ev.User.Email = "cust-measured-2", "measured2@example.com"
		}
		return ev
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < delivered; i += 32 {
				ev := mkEvent(i)
				sum := sha256.Sum256([]byte(ev.User.Email))
				id := wire.DeliveryID(ev.ID, "p1")
				a := store.Attempt{N: 1, At: time.Now(), Duration: time.Millisecond, Status: 200, Outcome: "delivered",
					URL: "https://partner.example/c?e=" + ev.ID + "&em=" + hex.EncodeToString(sum[:]) + "&u=" + ev.User.CustomerUserID + "&idfa=", Response: "ok"}
				if _, err := s.Store.AddAttempt(ctx, store.Meta{ID: id, Partner: "p1", EventID: ev.ID}, a, retry.StatusDelivered, 720*time.Hour); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	for i := delivered; i < delivered+pending; i += 100 {
		evs := make([]*event.Event, 100)
		for j := range evs {
			evs[j] = mkEvent(i + j)
		}
		for _, r := range s.Client.EnqueueBatch(ctx, evs) {
			require.NoError(t, r.Err)
		}
	}
	keys := s.Redis.DBSize(ctx).Val()
	t.Logf("built %d deliveries (%d keys) in %v", delivered+pending, keys, time.Since(start).Round(time.Millisecond))

	x, err := ops.NewEraser(ops.EraseConfig{Redis: s.Redis, Rate: 1 << 30})
	require.NoError(t, err)
	sub, err := event.NewSubject(event.SubjectCustomerUserID, "cust-measured")
	require.NoError(t, err)
	start = time.Now()
	dry, err := x.DryRun(ctx, sub)
	require.NoError(t, err)
	scan := time.Since(start)
	t.Logf("dry run (two scans, reading only): %v for %d keys: %v per million keys; found %d deliveries, %d tasks",
		scan.Round(time.Millisecond), keys, (scan * time.Duration(1e6) / time.Duration(keys)).Round(time.Millisecond), dry.Deliveries, dry.Tasks)

	start = time.Now()
	e, err := x.Start(ctx, sub)
	require.NoError(t, err)
	e, err = x.Run(ctx, e, sub)
	require.NoError(t, err)
	took := time.Since(start)
	require.Equal(t, int64(delivered+pending)/userEvery, e.Deliveries)
	t.Logf("erasure unthrottled: %v (%d deliveries, %d tasks, %d attempts rewritten)", took.Round(time.Millisecond), e.Deliveries, e.Tasks, e.Attempts)

	x, err = ops.NewEraser(ops.EraseConfig{Redis: s.Redis})
	require.NoError(t, err)
	sub, err = event.NewSubject(event.SubjectCustomerUserID, "cust-measured-2")
	require.NoError(t, err)
	start = time.Now()
	e, err = x.Start(ctx, sub)
	require.NoError(t, err)
	e, err = x.Run(ctx, e, sub)
	require.NoError(t, err)
	require.Equal(t, int64(delivered+pending)/userEvery, e.Deliveries)
	t.Logf("erasure at the default rate (20,000 hash keys/s): %v", time.Since(start).Round(time.Millisecond))
}

// TestMeasure_IndexBytes measures what an index from hashed identifiers
// to deliveries would cost in Redis per pending delivery: one set per
// identifier (customer user id, email, one device id), keyed by an HMAC
// of it, holding the delivery ids, expiring with the attempt log.
func TestMeasure_IndexBytes(t *testing.T) {
	measureOnly(t)
	for _, perUser := range []int{1, 10} {
		t.Run(fmt.Sprintf("%d deliveries per user", perUser), func(t *testing.T) {
			s := stacktest.New(t, measureYAML, stacktest.Options{NoWorker: true})
			ctx := context.Background()
			const n = 10000
			key := []byte("0123456789abcdef")
			ix := func(v string) string {
				m := hmac.New(sha256.New, key)
				m.Write([]byte(v))
				return store.Prefix + "ix:" + hex.EncodeToString(m.Sum(nil)[:16])
			}
			// The pending deliveries themselves, one event (and task) each.
			for i := range n {
				ev := &event.Event{ID: fmt.Sprintf("evt-%06d", i), Name: "purchase", Revenue: event.Revenue{Amount: "1.00", Currency: "USD"}}
				u := i / perUser
				ev.User.CustomerUserID, ev.User.Email = fmt.Sprintf("cust-%06d", u), fmt.Sprintf("user%06d@example.com", u)
				ev.Device.IDFA = fmt.Sprintf("6D92078A-8246-4BA4-AE5B-%012d", u)
				_, err := s.Client.Enqueue(ctx, ev)
				require.NoError(t, err)
			}
			var base int64
			iter := s.Redis.Scan(ctx, 0, "*", 1000).Iterator()
			for iter.Next(ctx) {
				base += s.Redis.MemoryUsage(ctx, iter.Val(), 0).Val()
			}
			require.NoError(t, iter.Err())
			t.Logf("pending deliveries without an index: %d bytes each, every key by MEMORY USAGE", base/n)
			seen := map[string]bool{}
			p := s.Redis.Pipeline()
			for i := range n {
				u := i / perUser
				id := wire.DeliveryID(fmt.Sprintf("evt-%06d", i), "p1")
				for _, v := range []string{fmt.Sprintf("cust-%06d", u), fmt.Sprintf("user%06d@example.com", u), fmt.Sprintf("6D92078A-8246-4BA4-AE5B-%012d", u)} {
					k := ix(v)
					seen[k] = true
					p.SAdd(ctx, k, id)
					p.PExpire(ctx, k, 720*time.Hour)
				}
			}
			_, err := p.Exec(ctx)
			require.NoError(t, err)
			var total int64
			for k := range seen {
				total += s.Redis.MemoryUsage(ctx, k, 0).Val()
			}
			t.Logf("index: %d keys, %d bytes by MEMORY USAGE: %d bytes per pending delivery", len(seen), total, total/n)
		})
	}
}
