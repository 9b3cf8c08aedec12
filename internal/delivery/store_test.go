package delivery_test

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

// TestStore_latencySamplesCapped: the recent-latency list is trimmed in
// steps rather than at every attempt, so it may run a little over
// LatencySamples, but never far, and readers see at most LatencySamples,
// newest first.
func TestStore_latencySamplesCapped(t *testing.T) {
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	st := store.New(rdb)
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)
	total := store.LatencySamples + 150
	for i := range total {
		m := store.Meta{ID: fmt.Sprintf("dlv_%d", i), Partner: "lat_cap", EventID: fmt.Sprintf("e%d", i)}
		a := store.Attempt{N: 1, At: start.Add(time.Duration(i) * time.Millisecond), Duration: time.Duration(i+1) * time.Microsecond, Status: 200, Outcome: "delivered"}
		_, err := st.AddAttempt(ctx, m, a, retry.StatusDelivered, time.Hour)
		require.NoError(t, err)
	}
	n, err := rdb.LLen(ctx, store.LatencyKey("lat_cap")).Result()
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, int64(store.LatencySamples))
	require.Less(t, n, int64(store.LatencySamples+64))

	lat, err := st.Latencies(ctx, "lat_cap", start.Add(-time.Second))
	require.NoError(t, err)
	require.Len(t, lat, store.LatencySamples)
	require.Equal(t, time.Duration(total)*time.Microsecond, lat[0], "newest first")

	rec, err := st.Get(ctx, "dlv_7")
	require.NoError(t, err)
	require.Equal(t, retry.StatusDelivered, rec.Status)
	require.Equal(t, 1, rec.Attempts)
	require.Equal(t, 200, rec.LastCode)
	require.Equal(t, "lat_cap", rec.Partner)
	require.Equal(t, "e7", rec.EventID)
}
