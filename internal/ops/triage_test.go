package ops_test

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
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/retry"
)

const triageYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: shop
    match: all
    events: [purchase]
    url: "SHOP/pb?click={click_id}&sum={revenue}"
    retry: {max_attempts: 1}
  - id: other
    match: all
    events: [signup]
    url: "OTHER/pb?click={click_id}"
`

// A mixed DLQ is grouped by partner, reason, status and the error with
// its ids masked; revenue at risk is summed exactly per currency; a letter
// the index lacks is found and indexed; and retry --group replays one
// group only.
func TestDLQ_Triage(t *testing.T) {
	t.Parallel()
	accept := &atomic.Bool{}
	shop := stacktest.NewPartner(t)
	shop.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		click := r.URL.Query().Get("click")
		switch {
		case accept.Load():
		case strings.HasPrefix(click, "bad-"):
			http.Error(w, "unknown click", http.StatusBadRequest)
		case strings.HasPrefix(click, "gone-"):
			http.Error(w, "no such campaign", http.StatusNotFound)
		case strings.HasPrefix(click, "moved-"):
			w.Header().Set("Location", "http://elsewhere.example/landing/"+click+"?click="+click)
			w.WriteHeader(http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}
	other := stacktest.NewPartner(t)
	other.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) }
	s := stacktest.New(t, strings.NewReplacer("SHOP", shop.URL, "OTHER", other.URL).Replace(triageYAML), stacktest.Options{})
	ctx := context.Background()

	send := func(id, name, click, amount, currency string) string {
		ev := &event.Event{ID: id, Name: name, ClickID: click}
		ev.Revenue.Amount, ev.Revenue.Currency = event.Decimal(amount), currency
		rc, err := s.Client.Enqueue(ctx, ev)
		require.NoError(t, err)
		require.Len(t, rc.Deliveries, 1)
		return rc.Deliveries[0].ID
	}
	// 0.1 + 0.2 in floats is 0.30000000000000004.
	send("e1", "purchase", "bad-1", "0.1", "USD")
	send("e2", "purchase", "bad-22", "0.2", "USD")
	send("e3", "purchase", "bad-333", "19.99", "EUR")
	send("e4", "purchase", "bad-4444", "0.10", "USD")
	gone := []string{send("e5", "purchase", "gone-1", "5", "USD"), send("e6", "purchase", "gone-2", "", "")}
	send("e7", "purchase", "moved-7", "1.005", "USD")
	send("e8", "purchase", "moved-88", "2", "USD")
	down := send("e9", "purchase", "down-9", "3.50", "GBP")
	send("e10", "signup", "bad-1", "", "")
	s.WaitDLQSize(t, "shop", 9, 15*time.Second)
	s.WaitDLQSize(t, "other", 1, 15*time.Second)

	// A letter written before the triage index existed.
	require.NoError(t, s.Redis.HDel(ctx, store.TriageKey("shop"), down).Err())

	d, err := ops.NewDLQ(ops.DLQConfig{Redis: s.Redis, Config: s.Live})
	require.NoError(t, err)
	groups, err := d.Triage(ctx, ops.TriageQuery{})
	require.NoError(t, err)
	type row struct {
		partner, reason string
		status, count   int
		revenue         map[string]string
	}
	var got []row
	byKey := map[string]*ops.TriageGroup{}
	for _, g := range groups {
		got = append(got, row{g.Partner, g.Reason, g.Status, g.Count, g.RevenueAtRisk})
		byKey[fmt.Sprintf("%s/%d", g.Partner, g.Status)] = g
		require.Regexp(t, `^g[0-9a-f]{10}$`, g.ID)
		require.False(t, g.First.After(g.Last))
		require.NotEmpty(t, g.SampleID)
	}
	require.ElementsMatch(t, []row{
		{"shop", "rejected", 400, 4, map[string]string{"USD": "0.40", "EUR": "19.99"}},
		{"shop", "rejected", 404, 2, map[string]string{"USD": "5"}},
		{"shop", "rejected", 302, 2, map[string]string{"USD": "3.005"}},
		{"shop", "exhausted", 503, 1, map[string]string{"GBP": "3.50"}},
		{"other", "rejected", 400, 1, map[string]string{}},
	}, got)
	require.Equal(t, 4, groups[0].Count, "the largest group first")

	moved := byKey["shop/302"]
	require.Equal(t, "HTTP <n> redirect to http://<host>/landing/<id>?click=<v> (not followed)", moved.Fingerprint)
	require.Contains(t, moved.SampleError, "click=***", "the sample is redacted as in logs")
	require.NotContains(t, moved.SampleError+moved.SampleURL, "click=moved", "no query value in clear")
	require.Contains(t, moved.SampleURL, "/pb?click=***&sum=***")

	// Ids are stable from one call to the next; the missing letter is
	// indexed now.
	again, err := d.Triage(ctx, ops.TriageQuery{Partner: "shop"})
	require.NoError(t, err)
	require.Len(t, again, 4)
	for _, g := range again {
		require.Equal(t, byKey[fmt.Sprintf("%s/%d", g.Partner, g.Status)].ID, g.ID)
	}
	require.NoError(t, s.Redis.HExists(ctx, store.TriageKey("shop"), down).Err())
	require.True(t, s.Redis.HExists(ctx, store.TriageKey("shop"), down).Val())

	// --since leaves out what died before it.
	recent, err := d.Triage(ctx, ops.TriageQuery{Since: time.Nanosecond})
	require.NoError(t, err)
	require.Empty(t, recent)

	// Replay the 404 group alone, once the partner accepts.
	accept.Store(true)
	dry, err := d.Replay(ctx, ops.Selection{Group: byKey["shop/404"].ID}, ops.ReplayOptions{DryRun: true})
	require.NoError(t, err)
	require.Equal(t, 2, dry.Selected)
	res, err := d.Replay(ctx, ops.Selection{Group: byKey["shop/404"].ID}, ops.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, res.Enqueued)
	for _, id := range gone {
		s.WaitStatus(t, id, retry.StatusDelivered, 15*time.Second)
	}
	after, err := d.Triage(ctx, ops.TriageQuery{})
	require.NoError(t, err)
	require.Len(t, after, 4)
	for _, g := range after {
		require.NotEqual(t, byKey["shop/404"].ID, g.ID)
	}
	_, err = d.Replay(ctx, ops.Selection{Group: byKey["shop/404"].ID}, ops.ReplayOptions{})
	require.ErrorIs(t, err, ops.ErrUnknownGroup)
}
