package opsevent_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/opsevent"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/triage"
	"github.com/postbackhq/postback/retry"
)

func init() { opsevent.SetDLQWindow(3 * time.Second) }

const eventsYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
ops:
  webhooks:
    - url: "OPS/events"
      secrets: ["SECRET"]
partners:
  - id: shop
    match: all
    url: "PARTNER/pb?click={click_id}"
    retry: {max_attempts: 1}
    auto_pause: {consecutive_failures: 20}
`

// An ops webhook that fails loses no postback and delays none: the
// partner's deliveries go on while the events wait, and once the webhook
// answers, the events arrive: partner.failing half way to the auto-pause,
// partner.recovered at the first success, and one dlq.dead_lettered for
// the minute's dead letters with their count, reasons and exact revenue.
func TestEvents_FailingWebhookLosesNothing(t *testing.T) {
	t.Parallel()
	ok := &atomic.Bool{}
	partner := stacktest.NewPartner(t)
	partner.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !ok.Load() {
			http.Error(w, "no", http.StatusBadRequest)
		}
	}
	rcv := newReceiver(t)
	rcv.fail = true
	yaml := strings.NewReplacer("OPS", rcv.URL, "PARTNER", partner.URL, "SECRET", opsSecret).Replace(eventsYAML)
	s := stacktest.New(t, yaml, stacktest.Options{})
	ctx := context.Background()
	send := func(i int, amount string) string {
		ev := &event.Event{ID: fmt.Sprintf("ev-%d", i), Name: "purchase", ClickID: fmt.Sprintf("c%d", i)}
		ev.Revenue = event.Revenue{Amount: event.Decimal(amount), Currency: "USD"}
		rc, err := s.Client.Enqueue(ctx, ev)
		require.NoError(t, err)
		return rc.Deliveries[0].ID
	}
	for i, amount := range []string{"0.1", "0.2", "0.05", "1", "2", "3", "4", "5", "6", "7"} {
		send(i, amount)
	}
	s.WaitDLQSize(t, "shop", 10, 15*time.Second)
	ok.Store(true)
	var ids []string
	for i := 10; i < 30; i++ {
		ids = append(ids, send(i, "1"))
	}
	for _, id := range ids {
		s.WaitStatus(t, id, retry.StatusDelivered, 15*time.Second)
	}

	time.Sleep(3 * time.Second) // the events are being retried meanwhile
	rcv.mu.Lock()
	require.Empty(t, rcv.events)
	rcv.fail = false
	rcv.mu.Unlock()

	failing := rcv.wait(t, opsevent.TypeFailing, 30*time.Second)
	require.Equal(t, "auto_pause_half_way", failing.Data.Cause)
	require.Equal(t, 10, failing.Data.ConsecutiveFailures)
	require.Equal(t, 20, failing.Data.AutoPauseAfter)
	recovered := rcv.wait(t, opsevent.TypeRecovered, 30*time.Second)
	require.Equal(t, failing.Timestamp.UnixMilli(), recovered.Data.FailingSince.UnixMilli())
	// The letters may straddle two windows, whose events retry on their
	// own backoff: wait until every letter is reported.
	require.Eventually(t, func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		dead := 0
		for _, ev := range rcv.events {
			if ev.Type == opsevent.TypeDeadLettered {
				dead += ev.Data.Count
			}
		}
		return dead >= 10
	}, 60*time.Second, 50*time.Millisecond, "dead letters reported in dlq.dead_lettered events")
	time.Sleep(time.Second) // a duplicate event, if one were sent

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	count := map[string]int{}
	var sums triage.Sums
	dead, windows := 0, map[string]bool{}
	for _, ev := range rcv.events {
		count[ev.Type]++
		if ev.Type != opsevent.TypeDeadLettered {
			continue
		}
		require.Equal(t, "shop", ev.Data.Partner)
		require.Equal(t, ev.Data.Count, ev.Data.Reasons["rejected"])
		require.False(t, windows[ev.Data.From.String()], "one event a window")
		windows[ev.Data.From.String()] = true
		dead += ev.Data.Count
		for cur, v := range ev.Data.RevenueAtRisk {
			require.NoError(t, sums.Add(v, cur))
		}
	}
	require.Equal(t, 10, dead, "every dead letter in one event")
	require.Equal(t, map[string]string{"USD": "28.35"}, sums.Map(), "exact revenue at risk")
	require.LessOrEqual(t, count[opsevent.TypeDeadLettered], 2, "letters of a few ms fall in one or two windows")
	require.Equal(t, 1, count[opsevent.TypeFailing])
	require.Equal(t, 1, count[opsevent.TypeRecovered])
	require.Zero(t, rcv.bad)
}
