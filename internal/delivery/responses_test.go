package delivery_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/retry"
)

// responsesYAML is a partner that answers 200 to everything and says in
// the body what it made of the postback, as TUNE/HasOffers does.
const responsesYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: verdicts
    match: all
    url: "PARTNER/aff_lsr?transaction_id={event_id}"
    retry: {max_attempts: 5, initial_interval: 100ms, max_interval: 200ms}
    responses:
      - {status: ["200"], body_match: '^success=true', outcome: delivered}
      - {status: ["200"], body_match: '(?i)duplicate', outcome: duplicate}
      - {status: ["200"], body_match: '^success=false', outcome: rejected}
      - {body_match: 'verdict=refused', outcome: rejected}
`

func TestHandler_ResponsesRules(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("transaction_id") {
		case "evt-ok":
			_, _ = w.Write([]byte("success=true;"))
		case "evt-dup":
			_, _ = w.Write([]byte("success=false; err_msg=Duplicate conversion;"))
		case "evt-long":
			// The verdict past the 64 KiB a worker keeps is not read.
			_, _ = w.Write([]byte(strings.Repeat(" ", 64<<10) + "verdict=refused"))
		default:
			_, _ = w.Write([]byte("success=false; err_msg=Invalid Trans. ID #42;"))
		}
	}
	s := stacktest.New(t, strings.ReplaceAll(responsesYAML, "PARTNER", p.URL), stacktest.Options{})
	b := stacktest.Retry{Stack: s, Partner: p}
	ok, dup, bad, long := b.Enqueue(t, "evt-ok"), b.Enqueue(t, "evt-dup"), b.Enqueue(t, "evt-bad"), b.Enqueue(t, "evt-long")

	rec := s.WaitStatus(t, bad, retry.StatusDead, 10*time.Second)
	require.Equal(t, "rejected", rec.Reason)
	require.Equal(t, 1, rec.Attempts, "a 200 that refuses is not retried")
	require.Equal(t, 200, rec.LastCode)
	require.Contains(t, rec.LastError, `responses[2] (status 200, body_match "^success=false") matched`)
	a := b.Attempts(t, bad)
	require.Len(t, a, 1)
	require.Equal(t, "rejected", a[0].Outcome)
	require.Equal(t, "success=false; err_msg=Invalid Trans. ID #42;", a[0].Response)

	rec = s.WaitStatus(t, ok, retry.StatusDelivered, 10*time.Second)
	require.Equal(t, 1, rec.Attempts)
	require.Empty(t, rec.Outcome)
	a = b.Attempts(t, ok)
	require.Equal(t, "delivered", a[0].Outcome)
	require.Equal(t, `responses[0] (status 200, body_match "^success=true")`, a[0].Rule)

	rec = s.WaitStatus(t, dup, retry.StatusDelivered, 10*time.Second)
	require.Equal(t, "duplicate", rec.Outcome, "final as delivered, and recorded as a duplicate")
	require.Equal(t, 1, rec.Attempts)
	a = b.Attempts(t, dup)
	require.Equal(t, "duplicate", a[0].Outcome)
	require.Empty(t, a[0].Error)

	s.WaitStatus(t, long, retry.StatusDelivered, 10*time.Second)
	require.Empty(t, b.Attempts(t, long)[0].Rule, "no rule saw the end of the body: success decided")

	st, err := ops.ReadStats(context.Background(), s.Redis, s.Live.Load(), "verdicts", time.Now())
	require.NoError(t, err)
	ps := st.Partners[0]
	require.Equal(t, int64(2), ps.Delivered1h)
	require.Equal(t, int64(1), ps.Duplicate1h)
	require.Equal(t, int64(1), ps.Dead1h)
	require.Equal(t, int64(4), ps.Attempts1h)
	require.InDelta(t, 3.0/4, *ps.SuccessRate, 1e-9)
	require.Len(t, p.Requests(), 4)

	attempts := func(o string) float64 {
		return testutil.ToFloat64(metrics.DeliveryAttempts.WithLabelValues("verdicts", o))
	}
	final := func(r string) float64 { return testutil.ToFloat64(metrics.Deliveries.WithLabelValues("verdicts", r)) }
	// Counted just after each record is written: wait for the last.
	require.Eventually(t, func() bool { return final("delivered")+final("duplicate")+final("dead") == 4 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, []float64{2, 1, 1}, []float64{attempts("delivered"), attempts("duplicate"), attempts("rejected")})
	require.Equal(t, []float64{2, 1, 1}, []float64{final("delivered"), final("duplicate"), final("dead")})
}
