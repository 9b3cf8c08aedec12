package delivery_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
)

// Every shard's queues are served, each by some processor, and a
// processor serves few of them, so that an idle worker polls little.
func TestProcessorQueues(t *testing.T) {
	t.Parallel()
	require.Equal(t, map[string]int{"postback": 6, "postback_replay": 1}, delivery.ProcessorQueues(0, 16, 1),
		"one shard: the queues postback always had")
	for _, c := range []struct{ processors, shards, perProcessor int }{
		{16, 1, 2}, {16, 4, 2}, {16, 16, 2}, {4, 6, 4}, {4, 16, 8}, {1, 3, 6},
	} {
		served := map[string]int{}
		for i := range c.processors {
			qs := delivery.ProcessorQueues(i, c.processors, c.shards)
			require.LessOrEqual(t, len(qs), c.perProcessor, "%+v: processor %d", c, i)
			for q, w := range qs {
				served[q] = w
			}
		}
		want := map[string]int{}
		for k := range c.shards {
			want[wire.Queue(k)], want[wire.ReplayQueue(k)] = 6, 1
		}
		require.Equal(t, want, served, "%+v: every queue served, new deliveries weighing 6 to replays' 1", c)
	}
}

// TestMeasureIdlePolling measures the Redis commands an idle worker (the
// default 16 processors) makes per second with 1 and with 4 shards, on a
// server of its own. It only runs with POSTBACK_SHARDS_MEASURE=1 (it takes
// a while and measures rather than checks):
//
//	POSTBACK_SHARDS_MEASURE=1 go test -run TestMeasureIdlePolling -v ./internal/delivery/
func TestMeasureIdlePolling(t *testing.T) {
	if os.Getenv("POSTBACK_SHARDS_MEASURE") == "" {
		t.Skip("set POSTBACK_SHARDS_MEASURE=1 to measure")
	}
	srv := redistest.Own(t, redistest.Options{})
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	for _, shards := range []int{1, 4, 1, 4} {
		require.NoError(t, rc.FlushAll(context.Background()).Err())
		cfg := stacktest.Config(t, workerYAML+fmt.Sprintf("redis:\n  shards: %d\n", shards))
		rdb, err := store.OpenRedis(srv.URL(0))
		require.NoError(t, err)
		w, err := delivery.NewWorker(delivery.WorkerConfig{Redis: rdb, Config: config.NewLive(cfg), Concurrency: 100,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		require.NoError(t, err)
		require.NoError(t, w.Start())
		time.Sleep(8 * time.Second) // past the start's own writes, and idle (IdleAfter)
		require.NoError(t, rc.ConfigResetStat(context.Background()).Err())
		const span = 10 * time.Second
		time.Sleep(span)
		calls, err := redistest.CommandCalls(context.Background(), rc)
		require.NoError(t, err)
		w.Shutdown()
		_ = rdb.Close()
		t.Logf("shards %d, %d processors: %.0f commands/s idle", shards, w.Dequeuers(), float64(calls)/span.Seconds())
	}
}
