package ops_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/triage"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// fillDLQ writes n dead letters of partner p, as a worker does (the
// outcome script, then the triage index), in 10 failure groups.
func fillDLQ(b *testing.B, rdb *store.AutoPipeline, p string, n int) {
	s := store.New(rdb.RDB)
	ctx := context.Background()
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				ev := &event.Event{ID: fmt.Sprintf("evt-%d", i), Name: "purchase", ClickID: fmt.Sprintf("clk-%d-%d", i, i*7),
					Revenue: event.Revenue{Amount: event.Decimal(fmt.Sprintf("%d.%02d", i%50, i%100)), Currency: []string{"USD", "EUR"}[i%2]}}
				id := wire.DeliveryID(ev.ID, p)
				raw, err := wire.EncodePayload(&wire.Payload{Delivery: id, Partner: p, Event: ev, Enqueued: now.UnixMilli()})
				if err != nil {
					errs <- err
					return
				}
				code := 400 + i%10
				url := fmt.Sprintf("https://pb.acme.example/c?click_id=clk-%d&sum=1", i)
				errText := fmt.Sprintf("HTTP %d redirect to https://x%d.example/l/%d?c=%d (not followed)", code, i%10, i, i)
				a := store.Attempt{N: 1, At: now, Status: code, Outcome: retry.Rejected.String(), Error: errText, URL: url}
				m := store.Meta{ID: id, Partner: p, EventID: ev.ID}
				if _, err := s.DeadLetterAttempt(ctx, m, a, "rejected", raw, now.Add(time.Duration(i)*time.Millisecond)); err != nil {
					errs <- err
					return
				}
				fp := triage.Of(p, "rejected", code, errText)
				g := store.TriageGroup{ID: fp.ID(), Reason: "rejected", Status: code, Error: fp.Error, SampleID: id,
					SampleError: triage.RedactText(errText), SampleURL: triage.RedactURL(url)}
				e := store.TriageEntry{Group: g.ID, Amount: string(ev.Revenue.Amount), Currency: ev.Revenue.Currency}
				if err := s.IndexDead(ctx, p, map[string]store.TriageEntry{id: e}, []store.TriageGroup{g}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// setupTriage fills a database with n dead letters of partner acme.
func setupTriage(b *testing.B, n int) (*ops.DLQ, *store.Store) {
	b.Helper()
	rdb, err := store.OpenRedis(redistest.DB(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rdb.Close() })
	pipe := store.NewAutoPipeline(rdb.(*redis.Client), store.DefaultFlushers, false)
	defer pipe.Close()
	start := time.Now()
	fillDLQ(b, pipe, "acme", n)
	b.Logf("%d dead letters written in %s", n, time.Since(start).Round(time.Millisecond))
	live := config.NewLive(config.NewConfig("bench", config.APIConfig{}, config.DeliveryConfig{AttemptLogRetention: time.Hour}, nil))
	d, err := ops.NewDLQ(ops.DLQConfig{Redis: rdb, Config: live})
	if err != nil {
		b.Fatal(err)
	}
	return d, store.New(rdb)
}

// BenchmarkTriage_100k is one `dlq triage` of 100,000 dead letters in 10
// groups, from the triage index.
func BenchmarkTriage_100k(b *testing.B) {
	d, _ := setupTriage(b, 100_000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		groups, err := d.Triage(ctx, ops.TriageQuery{})
		if err != nil {
			b.Fatal(err)
		}
		if len(groups) != 10 {
			b.Fatalf("%d groups", len(groups))
		}
	}
}

// BenchmarkTriageScan_100k groups the same letters by reading each one,
// as triage would without its index.
func BenchmarkTriageScan_100k(b *testing.B) {
	_, s := setupTriage(b, 100_000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		ids, err := s.DeadIDs(ctx, "acme", time.Time{}, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		groups := map[string]*triage.Sums{}
		for len(ids) > 0 {
			chunk := ids[:min(500, len(ids))]
			ids = ids[len(chunk):]
			dls, err := s.GetDead(ctx, chunk)
			if err != nil {
				b.Fatal(err)
			}
			for _, dl := range dls {
				id := triage.Of("acme", dl.Reason, dl.LastCode, dl.LastError).ID()
				if groups[id] == nil {
					groups[id] = &triage.Sums{}
				}
				pl, err := wire.DecodePayload(dl.Payload)
				if err != nil {
					b.Fatal(err)
				}
				_ = groups[id].Add(string(pl.Event.Revenue.Amount), pl.Event.Revenue.Currency)
			}
		}
		if len(groups) != 10 {
			b.Fatalf("%d groups", len(groups))
		}
	}
}
