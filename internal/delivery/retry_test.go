package delivery_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/retry"
)

// retryYAML is one partner with short retry intervals; RETRY and TIMEOUT
// are replaced per test.
const retryYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: p1
    match: all
    url: "PARTNER/c?e={event_id}&n={attempt}"
    timeout: TIMEOUT
    retry: RETRY
`

const shortRetry = "{max_attempts: 3, initial_interval: 100ms, max_interval: 500ms, multiplier: 2}"

type retryBundle struct {
	stack   *stacktest.Stack
	partner *stacktest.Partner
}

// setupRetry starts a stack whose partner p1 answers with respond.
func setupRetry(t *testing.T, retry, timeout string, respond func(n int, w http.ResponseWriter, r *http.Request)) retryBundle {
	t.Helper()
	p := stacktest.NewPartner(t)
	p.Respond = respond
	yaml := strings.NewReplacer("PARTNER", p.URL, "RETRY", retry, "TIMEOUT", timeout).Replace(retryYAML)
	return retryBundle{stack: stacktest.New(t, yaml, stacktest.Options{}), partner: p}
}

func (b retryBundle) enqueue(t *testing.T, id string) string {
	t.Helper()
	rc, err := b.stack.Client.Enqueue(context.Background(), &event.Event{ID: id, Name: "install"})
	require.NoError(t, err)
	require.Len(t, rc.Deliveries, 1)
	return rc.Deliveries[0].ID
}

func (b retryBundle) attempts(t *testing.T, id string) []store.Attempt {
	t.Helper()
	a, err := b.stack.Store.Attempts(context.Background(), id)
	require.NoError(t, err)
	return a
}

func statusSequence(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(n, len(codes))-1])
		_, _ = w.Write([]byte("answer " + http.StatusText(codes[min(n, len(codes))-1])))
	}
}

func TestHandler_RetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	b := setupRetry(t, shortRetry, "2s", statusSequence(500, 500, 200))
	id := b.enqueue(t, "evt-retry")

	rec := b.stack.WaitStatus(t, id, retry.StatusDelivered, 20*time.Second)
	require.Equal(t, 3, rec.Attempts)
	got := b.attempts(t, id)
	require.Len(t, got, 3)
	for i, want := range []struct {
		status  int
		outcome string
	}{{500, "retry"}, {500, "retry"}, {200, "delivered"}} {
		require.Equal(t, i+1, got[i].N)
		require.Equal(t, want.status, got[i].Status)
		require.Equal(t, want.outcome, got[i].Outcome)
		require.Contains(t, got[i].URL, "n="+string(rune('1'+i)), "each attempt renders its own {attempt}")
		require.NotEmpty(t, got[i].Response)
	}
	reqs := b.partner.Requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		require.Equal(t, id, r.Header.Get("Idempotency-Key"), "the same key on every retry")
	}
	// Backoff: the retries are spaced by at least the jittered initial interval.
	require.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), 80*time.Millisecond)
	_, _, _, _, archived := b.stack.QueueSizes(t)
	require.Zero(t, archived)
}

func TestHandler_DeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		respond func(int, http.ResponseWriter, *http.Request)
	}{
		{"400", statusSequence(400)},
		{"404", statusSequence(404)},
		{"302", func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupRetry(t, shortRetry, "2s", tc.respond)
			id := b.enqueue(t, "evt-"+tc.name)

			rec := b.stack.WaitStatus(t, id, retry.StatusDead, 10*time.Second)
			require.Equal(t, "rejected", rec.Reason)
			require.Equal(t, 1, rec.Attempts)
			require.Equal(t, tc.name, itoa(rec.LastCode))
			require.NotEmpty(t, rec.LastError)
			require.Contains(t, rec.URL, "/c?e=evt-"+tc.name)
			require.False(t, rec.First.IsZero())
			require.False(t, rec.DeadAt.IsZero())
			require.Len(t, b.attempts(t, id), 1)

			d, err := ops.NewDLQ(ops.DLQConfig{Redis: b.stack.Redis, Config: b.stack.Live})
			require.NoError(t, err)
			dl, err := d.Show(context.Background(), id)
			require.NoError(t, err)
			require.NotNil(t, dl.Event, "the dead letter keeps the full event")
			require.Equal(t, "evt-"+tc.name, dl.Event.ID)
			size, err := b.stack.Store.DLQSize(context.Background(), "p1")
			require.NoError(t, err)
			require.EqualValues(t, 1, size)

			// Nothing more happens: no retry, no redirect followed.
			time.Sleep(300 * time.Millisecond)
			reqs := b.partner.Requests()
			require.Len(t, reqs, 1)
			require.NotContains(t, reqs[0].URL, "elsewhere")
			p, a, s, r, archived := b.stack.QueueSizes(t)
			require.Zero(t, p+a+s+r+archived)
		})
	}
}

func TestHandler_HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	b := setupRetry(t, "{max_attempts: 3, initial_interval: 100ms, max_interval: 5s, multiplier: 2}", "2s",
		func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
	id := b.enqueue(t, "evt-429")

	b.stack.WaitStatus(t, id, retry.StatusDelivered, 20*time.Second)
	reqs := b.partner.Requests()
	require.Len(t, reqs, 2)
	require.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), 3*time.Second)
	got := b.attempts(t, id)
	require.Equal(t, http.StatusTooManyRequests, got[0].Status)
	require.Equal(t, "retry", got[0].Outcome)
}

// hang never answers: it holds the request until the client gives up.
func hang(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func TestHandler_ExhaustsAtMaxAttempts(t *testing.T) {
	t.Parallel()
	b := setupRetry(t, shortRetry, "200ms", hang)
	id := b.enqueue(t, "evt-silent")

	rec := b.stack.WaitStatus(t, id, retry.StatusDead, 20*time.Second)
	require.Equal(t, "exhausted", rec.Reason)
	require.Equal(t, 3, rec.Attempts)
	got := b.attempts(t, id)
	require.Len(t, got, 3)
	for _, a := range got {
		require.Equal(t, "retry", a.Outcome)
		require.Zero(t, a.Status)
		require.NotEmpty(t, a.Error)
	}
	time.Sleep(700 * time.Millisecond) // longer than any backoff: no fourth attempt
	require.Len(t, b.partner.Requests(), 3)
	_, _, _, _, archived := b.stack.QueueSizes(t)
	require.Zero(t, archived)
}

func TestHandler_ExhaustsAtMaxAge(t *testing.T) {
	t.Parallel()
	b := setupRetry(t, "{max_attempts: 1000, max_age: 1500ms, initial_interval: 100ms, max_interval: 300ms, multiplier: 2}", "100ms", hang)
	id := b.enqueue(t, "evt-old")

	rec := b.stack.WaitStatus(t, id, retry.StatusDead, 20*time.Second)
	require.Equal(t, "exhausted", rec.Reason)
	require.Greater(t, rec.Attempts, 1)
	require.Less(t, rec.Attempts, 1000, "max_age, not max_attempts, ended it")
	require.Len(t, b.attempts(t, id), rec.Attempts)
	// The last attempt started within max_age of the enqueue.
	require.False(t, rec.Last.After(rec.First.Add(1500*time.Millisecond)))
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}
