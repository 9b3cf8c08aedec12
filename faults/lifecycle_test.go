//go:build faults

package faults

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// lifecycleConfig is a partner that orders by click and guards payouts by
// click, event and transaction.
func lifecycleConfig(t *testing.T, partnerURL string) string {
	yaml := fmt.Sprintf(`api:
  keys: [%q]
  dedup_window: 1h
delivery:
  timeout: 30s
  allow_private_networks: true
partners:
  - id: net
    events: [install, purchase]
    match: all
    url: "%s/pb?e={event_id}&dlv={delivery_id}&click={click_id}&tx={transaction_id}"
    timeout: 30s
    retry: {max_attempts: 100, max_age: 30m, initial_interval: 500ms, max_interval: 3s, multiplier: 2}
    order_by: click_id
    dedup: {key: "{click_id}:{event}:{transaction_id}", window: 1h}
`, apiKey, partnerURL)
	path := filepath.Join(t.TempDir(), "postback.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	return path
}

// postUntilStored posts body until the API answers 202 or 200.
func postUntilStored(ctx context.Context, t *testing.T, url, body string) {
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/events", bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK {
				return
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("POST %s: %d", body, resp.StatusCode)
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Scenario: kill -9 a worker with ordered, payout-guarded deliveries in
// flight. Per click, the install, then its purchase, then a repeat of the
// purchase under another event id. After the kill, every install still
// reaches the partner before its purchase (the purchase's first request
// arrives after the install's last), every purchase is delivered, and no
// repeat is ever sent: it is skipped as duplicate_conversion.
func TestKillWorkerLifecycle(t *testing.T) {
	t.Parallel() // mostly waits for asynq's lease to run out
	ctx := bound(t, 4*time.Minute)
	rs := startRedis(t, redistest.Options{})
	p := newPartner(t)
	cfg := lifecycleConfig(t, p.URL)
	api := startPostback(t, "api", "api", rs.URL(0), cfg)
	p.Hold()
	w1 := startPostback(t, "worker-1", "worker", rs.URL(0), cfg, "--concurrency", "200")

	const clicks = 200
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for k := range next {
				for _, ev := range []struct{ id, name string }{{"i", "install"}, {"p", "purchase"}, {"q", "purchase"}} {
					postUntilStored(ctx, t, api.URL, fmt.Sprintf(`{"id":"%s-%d","name":%q,"click_id":"ck-%d","transaction_id":"t-%d"}`, ev.id, k, ev.name, k, k))
				}
			}
		})
	}
	for k := range clicks {
		next <- k
	}
	close(next)
	wg.Wait()
	eventually(t, time.Minute, func() bool { return p.inflight.Load() >= 100 }, func() string {
		return fmt.Sprintf("%d requests held at the partner, want 100", p.inflight.Load())
	})
	t.Logf("killing worker-1 with %d requests in flight", p.inflight.Load())
	w1.Kill()
	p.Release()
	startPostback(t, "worker-2", "worker", rs.URL(0), cfg, "--concurrency", "200")

	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	st := store.New(rdb)
	status := func(id string) *store.Record {
		rec, err := st.Get(ctx, wire.DeliveryID(id, "net"))
		if err != nil {
			return nil
		}
		return rec
	}
	eventually(t, 3*time.Minute, func() bool {
		for k := range clicks {
			for _, id := range []string{fmt.Sprintf("i-%d", k), fmt.Sprintf("p-%d", k), fmt.Sprintf("q-%d", k)} {
				if rec := status(id); rec == nil || !rec.Status.Final() {
					return false
				}
			}
		}
		return true
	}, func() string { return "not every delivery is final" })

	lastInstall, firstPurchase := map[int]time.Time{}, map[int]time.Time{}
	sentRepeat := 0
	for _, a := range p.Arrivals() {
		var k int
		switch {
		case sscan(a.event, "i-%d", &k):
			lastInstall[k] = a.at
		case sscan(a.event, "p-%d", &k):
			if _, ok := firstPurchase[k]; !ok {
				firstPurchase[k] = a.at
			}
		case sscan(a.event, "q-%d", &k):
			sentRepeat++
		}
	}
	for k := range clicks {
		require.Equal(t, retry.StatusDelivered, status(fmt.Sprintf("i-%d", k)).Status)
		require.Equal(t, retry.StatusDelivered, status(fmt.Sprintf("p-%d", k)).Status)
		q := status(fmt.Sprintf("q-%d", k))
		require.Equal(t, retry.StatusSkipped, q.Status)
		require.Equal(t, "duplicate_conversion: repeats delivery "+wire.DeliveryID(fmt.Sprintf("p-%d", k), "net"), q.Reason)
		require.True(t, lastInstall[k].Before(firstPurchase[k]), "click %d: a purchase arrived before its install's last request", k)
	}
	require.Zero(t, sentRepeat, "a repeated conversion was sent")
	t.Logf("%d clicks: every install before its purchase, %d requests in all, %d aborted by the kill, no repeat sent",
		clicks, len(p.Arrivals()), p.aborted.Load())
}

func sscan(s, format string, k *int) bool {
	_, err := fmt.Sscanf(s, format, k)
	return err == nil
}
