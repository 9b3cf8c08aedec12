package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
)

// A lease ends when its request said, not a TTL after Redis ran it: a
// request that waited out a Redis freeze in its input buffer (its caller
// gone) holds the delivery only for what is left of its TTL. Here the
// request is as if sent 50 s ago with a 55 s TTL: 5 s are left.
func TestGetForAttempt_leaseEndsWhenTheRequestSaid(t *testing.T) {
	ctx := context.Background()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	s := store.New(rdb)
	lease := store.Lease{Token: "late", TTL: 55 * time.Second, Until: time.Now().Add(5 * time.Second)}
	_, _, busy, _, err := s.GetForAttempt(ctx, "dlv_late", "ev_late", lease, "")
	require.NoError(t, err)
	require.Zero(t, busy)
	ttl := rdb.PTTL(ctx, store.LeaseKey("dlv_late")).Val()
	require.Positive(t, ttl, "the lease is taken")
	require.LessOrEqual(t, ttl, 5*time.Second, "and ends when the request said")

	// By default it ends TTL after the call.
	_, _, _, _, err = s.GetForAttempt(ctx, "dlv_now", "ev_now", store.Lease{Token: "now", TTL: time.Minute}, "")
	require.NoError(t, err)
	require.Greater(t, rdb.PTTL(ctx, store.LeaseKey("dlv_now")).Val(), 55*time.Second)
}
