package delivery_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
)

// A lease whose release failed (Redis frozen) may be taken after all by a
// script that waited in Redis's input buffer and ran only when Redis came
// back, even just after a release that worked: the release is made once
// more a few seconds later, so the delivery's next run does not wait out
// the lease's whole TTL.
func TestReleaseLater_leaseTakenAsRedisReturns(t *testing.T) {
	ctx := context.Background()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	st := store.New(rdb)
	key := store.LeaseKey("dlv_late")
	delivery.ReleaseLater(ctx, st, "dlv_late", "tok", func() {
		// The script sent before the outage lands now.
		require.NoError(t, rdb.Set(ctx, key, "tok", time.Minute).Err())
	})
	require.Zero(t, rdb.Exists(ctx, key).Val(), "the lease taken late is freed")
}
