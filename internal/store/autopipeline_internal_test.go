package store

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
)

// Commands sent under one ordering key reach Redis in the order they were
// sent, whatever the number of flushers: what lets an event's tasks travel
// right behind its claim. Here each key is SET, then APPENDed to without
// waiting for the SET's answer; run the other way round, the SET would
// overwrite the APPEND.
func TestAutoPipelineKeepsOrderPerKey(t *testing.T) {
	rdb, err := OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	a := NewAutoPipeline(rdb.(*redis.Client), 4, false)
	t.Cleanup(func() { _ = a.Close() })

	const n = 2000
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("order:%d", i)
			ctx := InOrder(context.Background(), key)
			set := redis.NewStatusCmd(ctx, "set", key, "a")
			wait := a.Send(ctx, set)
			require.NoError(t, a.RDB.Append(ctx, key, "b").Err())
			wait()
			require.NoError(t, set.Err())
		})
	}
	wg.Wait()
	for i := range n {
		require.Equal(t, "ab", rdb.Get(context.Background(), fmt.Sprintf("order:%d", i)).Val(), "key %d", i)
	}
}

// A closed pipeline answers ErrClosed, and closing twice is harmless.
func TestAutoPipelineClose(t *testing.T) {
	rdb, err := OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	a := NewAutoPipeline(rdb.(*redis.Client), 2, false)
	require.NoError(t, a.RDB.Set(context.Background(), "k", "v", 0).Err())
	require.NoError(t, a.Close())
	require.NoError(t, a.Close())
	require.ErrorIs(t, a.RDB.Get(context.Background(), "k").Err(), redis.ErrClosed)
}
