package delivery_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/retry"
)

func TestHandler_RetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	b := stacktest.NewRetry(t, stacktest.ShortRetry, "2s", stacktest.StatusSequence(500, 500, 200))
	id := b.Enqueue(t, "evt-retry")

	rec := b.Stack.WaitStatus(t, id, retry.StatusDelivered, 20*time.Second)
	require.Equal(t, 3, rec.Attempts)
	got := b.Attempts(t, id)
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
	reqs := b.Partner.Requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		require.Equal(t, id, r.Header.Get("Idempotency-Key"), "the same key on every retry")
	}
	// Backoff: the retries are spaced by at least the jittered initial interval.
	require.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), 80*time.Millisecond)
	_, _, _, _, archived := b.Stack.QueueSizes(t)
	require.Zero(t, archived)
}

func TestHandler_DeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		respond func(int, http.ResponseWriter, *http.Request)
	}{
		{"400", stacktest.StatusSequence(400)},
		{"404", stacktest.StatusSequence(404)},
		{"302", func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := stacktest.NewRetry(t, stacktest.ShortRetry, "2s", tc.respond)
			id := b.Enqueue(t, "evt-"+tc.name)

			rec := b.Stack.WaitStatus(t, id, retry.StatusDead, 10*time.Second)
			require.Equal(t, "rejected", rec.Reason)
			require.Equal(t, 1, rec.Attempts)
			require.Equal(t, tc.name, strconv.Itoa(rec.LastCode))
			require.NotEmpty(t, rec.LastError)
			require.Contains(t, rec.URL, "/c?e=evt-"+tc.name)
			require.False(t, rec.First.IsZero())
			require.False(t, rec.DeadAt.IsZero())
			require.Len(t, b.Attempts(t, id), 1)

			d, err := ops.NewDLQ(ops.DLQConfig{Redis: b.Stack.Redis, Config: b.Stack.Live})
			require.NoError(t, err)
			dl, err := d.Show(context.Background(), id)
			require.NoError(t, err)
			require.NotNil(t, dl.Event, "the dead letter keeps the full event")
			require.Equal(t, "evt-"+tc.name, dl.Event.ID)
			size, err := b.Stack.Store.DLQSize(context.Background(), "p1")
			require.NoError(t, err)
			require.EqualValues(t, 1, size)

			// Nothing more happens: no retry, no redirect followed.
			time.Sleep(300 * time.Millisecond)
			reqs := b.Partner.Requests()
			require.Len(t, reqs, 1)
			require.NotContains(t, reqs[0].URL, "elsewhere")
			p, a, s, r, archived := b.Stack.QueueSizes(t)
			require.Zero(t, p+a+s+r+archived)
		})
	}
}

func TestHandler_HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	b := stacktest.NewRetry(t, "{max_attempts: 3, initial_interval: 100ms, max_interval: 5s, multiplier: 2}", "2s",
		func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
	id := b.Enqueue(t, "evt-429")

	b.Stack.WaitStatus(t, id, retry.StatusDelivered, 20*time.Second)
	reqs := b.Partner.Requests()
	require.Len(t, reqs, 2)
	require.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), 3*time.Second)
	got := b.Attempts(t, id)
	require.Equal(t, http.StatusTooManyRequests, got[0].Status)
	require.Equal(t, "retry", got[0].Outcome)
}

// hang never answers: it holds the request until the client gives up.
func hang(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func TestHandler_ExhaustsAtMaxAttempts(t *testing.T) {
	t.Parallel()
	b := stacktest.NewRetry(t, stacktest.ShortRetry, "200ms", hang)
	id := b.Enqueue(t, "evt-silent")

	rec := b.Stack.WaitStatus(t, id, retry.StatusDead, 20*time.Second)
	require.Equal(t, "exhausted", rec.Reason)
	require.Equal(t, 3, rec.Attempts)
	got := b.Attempts(t, id)
	require.Len(t, got, 3)
	for _, a := range got {
		require.Equal(t, "retry", a.Outcome)
		require.Zero(t, a.Status)
		require.NotEmpty(t, a.Error)
	}
	time.Sleep(700 * time.Millisecond) // longer than any backoff: no fourth attempt
	require.Len(t, b.Partner.Requests(), 3)
	_, _, _, _, archived := b.Stack.QueueSizes(t)
	require.Zero(t, archived)
}

func TestHandler_ExhaustsAtMaxAge(t *testing.T) {
	t.Parallel()
	b := stacktest.NewRetry(t, "{max_attempts: 1000, max_age: 1500ms, initial_interval: 100ms, max_interval: 300ms, multiplier: 2}", "100ms", hang)
	id := b.Enqueue(t, "evt-old")

	rec := b.Stack.WaitStatus(t, id, retry.StatusDead, 20*time.Second)
	require.Equal(t, "exhausted", rec.Reason)
	require.Greater(t, rec.Attempts, 1)
	require.Less(t, rec.Attempts, 1000, "max_age, not max_attempts, ended it")
	require.Len(t, b.Attempts(t, id), rec.Attempts)
	// The last attempt started within max_age of the enqueue.
	require.False(t, rec.Last.After(rec.First.Add(1500*time.Millisecond)))
}
