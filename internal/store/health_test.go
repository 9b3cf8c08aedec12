package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/retry"
)

// Failed attempts in a row pause the partner at the threshold; a success
// in between starts the count again. With shards, the partner's
// attempts in every shard count together.
func TestStore_AutoPause(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprint(shards, " shards"), func(t *testing.T) {
			t.Parallel()
			testAutoPause(t, shards)
		})
	}
}

func testAutoPause(t *testing.T, shards int) {
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	s := store.NewSharded(rdb, shards)
	ctx := context.Background()
	now := time.Now()
	attempt := func(i int, outcome retry.Outcome) *store.Health {
		h := &store.Health{AutoPause: 3, Track: true, PauseReason: "auto: 3 consecutive failures: HTTP 503"}
		m := store.Meta{ID: "dlv_" + string(rune('a'+i)), Partner: "acme", EventID: "e", Health: h}
		status := retry.StatusRetrying
		if outcome == retry.Delivered {
			status = retry.StatusDelivered
		}
		_, err := s.Shard(i%shards).AddAttempt(ctx, m, store.Attempt{N: 1, At: now, Outcome: outcome.String(), Status: 503}, status, time.Hour)
		require.NoError(t, err)
		require.NoError(t, h.Err)
		return h
	}
	require.Equal(t, 1, attempt(0, retry.Retry).Fails)
	h := attempt(1, retry.Retry)
	require.Equal(t, 2, h.Fails)
	require.False(t, h.Failing.IsZero(), "half way to the auto-pause")
	h = attempt(2, retry.Delivered)
	require.False(t, h.Recovered.IsZero(), "the first success after failing")
	fails, err := s.Fails(ctx, "acme")
	require.NoError(t, err)
	require.Zero(t, fails, "a success resets the count")

	require.Equal(t, 1, attempt(3, retry.Rejected).Fails)
	require.Equal(t, 2, attempt(4, retry.Retry).Fails)
	h = attempt(5, retry.Retry)
	require.False(t, h.Paused.IsZero(), "the third failure in a row pauses")
	paused, err := s.Paused(ctx)
	require.NoError(t, err)
	require.True(t, paused["acme"].Paused)
	require.Equal(t, "auto", paused["acme"].By)
	require.Equal(t, "auto: 3 consecutive failures: HTTP 503", paused["acme"].Reason)
	require.Equal(t, h.Paused.UnixMilli(), paused["acme"].Since.UnixMilli())

	// Attempts in flight when the pause landed count again from zero and
	// do not pause twice.
	for i := range 3 {
		require.True(t, attempt(6+i, retry.Retry).Paused.IsZero())
	}
	// Without auto-pause nothing is counted.
	m := store.Meta{ID: "dlv_z", Partner: "other", EventID: "e", Health: &store.Health{Track: true}}
	_, err = s.Shard(shards-1).AddAttempt(ctx, m, store.Attempt{N: 1, At: now, Outcome: retry.Retry.String()}, retry.StatusRetrying, time.Hour)
	require.NoError(t, err)
	fails, err = s.Fails(ctx, "other")
	require.NoError(t, err)
	require.Zero(t, fails)
}
