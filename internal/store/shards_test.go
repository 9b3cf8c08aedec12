package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
)

func TestKeyShard(t *testing.T) {
	t.Parallel()
	require.Equal(t, "pb:{pb}:", store.KeyPrefix(0), "shard 0 keeps the keys postback always had")
	require.Equal(t, "pb:{postback:3-10}:", store.KeyPrefix(3), "shard 3's keys share its queue's tag")
	require.Equal(t, store.DeliveryKey("dlv_x"), store.New(nil).DeliveryKey("dlv_x"))
	require.Equal(t, store.EventKey("evt-1"), store.New(nil).ClaimKey("evt-1"), "one shard: the claim key postback always had")
	for k := range 9 {
		s := store.NewSharded(nil, 9).Shard(k)
		id, shard, ok := store.RecordID(s.DeliveryKey("dlv_ab"))
		require.True(t, ok)
		require.Equal(t, "dlv_ab", id)
		require.Equal(t, k, shard)
		require.True(t, store.IsTriageGroups(s.TriageGroupsKey("acme")))
		_, _, ok = store.RecordID(s.AttemptsKey("dlv_ab"))
		require.False(t, ok)
	}
	for _, key := range []string{"pb:{other}:d:dlv_x", "asynq:{postback}:t:x", "pb:{postback:3}:d:dlv_x"} {
		_, _, ok := store.KeyShard(key)
		require.False(t, ok, key)
	}
}

// A delivery whose shard is not its event's (a lifecycle rule placed it
// by partner) still reads its event's claim before an attempt, from the
// event's shard.
func TestStore_GetForAttemptClaimInAnotherShard(t *testing.T) {
	t.Parallel()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	s := store.NewSharded(rdb, 4)
	ctx := context.Background()
	const ev = "evt-claimed"
	claim, err := s.ClaimEvent(ctx, ev, []byte("receipt"), time.Hour)
	require.NoError(t, err)
	require.True(t, claim.New)
	home := wire.ShardOf(ev, 4)
	require.Equal(t, home, s.EventShard(ev).Index())
	for k := range 4 {
		rec, got, busy, _, err := s.Shard(k).GetForAttempt(ctx, "dlv_"+string(rune('a'+k)), ev, store.Lease{Token: "t", TTL: time.Minute}, "")
		require.NoError(t, err)
		require.Nil(t, rec)
		require.Zero(t, busy)
		require.Equal(t, "receipt", string(got), "shard %d reads the claim of the event's shard %d", k, home)
	}
	require.Equal(t, store.KeyPrefix(home)+"evt4:"+ev, s.ClaimKey(ev), "a claim names the layout that placed it")
	n, err := rdb.Exists(ctx, s.ClaimKey(ev)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the claim lives in the event id's shard")
}
