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

// On a Redis Cluster, concurrent commands to keys on every node leave in
// shared pipelines, split by node, and each gets its own answer; scripts
// run too (EVALSHA, then EVAL on a node that lacks the script).
func TestClusterAutoPipeline(t *testing.T) {
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	c := redistest.StartCluster(t, 3)
	rdb, err := OpenRedis(c.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	a := NewClusterAutoPipeline(rdb.(*redis.ClusterClient), 2, false)
	t.Cleanup(func() { _ = a.Close() })
	script := redis.NewScript(`return redis.call("INCRBY", KEYS[1], ARGV[1])`)

	const n = 600
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx := context.Background()
			key := fmt.Sprintf("cl:{%d}", i) // spread over the slots, so the nodes
			require.NoError(t, a.RDB.Set(ctx, key, i, 0).Err())
			v, err := script.Run(ctx, a.RDB, []string{key}, 1).Int()
			require.NoError(t, err)
			require.Equal(t, i+1, v, "key %s", key)
		})
	}
	wg.Wait()
	nodes := map[string]bool{}
	for i := range n {
		addr, err := rdb.(*redis.ClusterClient).MasterForKey(context.Background(), fmt.Sprintf("cl:{%d}", i))
		require.NoError(t, err)
		nodes[addr.Options().Addr] = true
	}
	require.Len(t, nodes, 3, "the keys are on every master")
}
