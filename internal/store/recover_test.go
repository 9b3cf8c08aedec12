package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
)

// TestRequeueExpired runs a task on a real asynq server, makes its lease
// look expired (as when Redis froze under the processor and its lease
// extensions failed), and checks that RequeueExpired puts it back in the
// queue, where asynq runs it again. It fails if asynq's key names change.
func TestRequeueExpired(t *testing.T) {
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	const queue = "recover-test"
	release := make(chan struct{})
	var runs atomic.Int32
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 2, Queues: map[string]int{queue: 1}, LogLevel: asynq.FatalLevel,
		TaskCheckInterval: 10 * time.Millisecond,
	})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		if runs.Add(1) == 1 {
			<-release // the lost run: it never ends while the test looks
		}
		return nil
	})))
	t.Cleanup(func() { close(release); srv.Shutdown() })
	_, err = asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask("t", nil), asynq.Queue(queue), asynq.TaskID("lost-1"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return runs.Load() == 1 }, 10*time.Second, 10*time.Millisecond)

	s := store.New(rdb)
	n, err := s.RequeueExpired(context.Background(), queue, 5*time.Second, 100)
	require.NoError(t, err)
	require.Zero(t, n, "a task whose lease holds is left alone")

	// Expire its lease; the heartbeat may extend it again between the two
	// calls, so try a few times.
	ctx := context.Background()
	lease := "asynq:{" + queue + "}:lease"
	for i := 0; i < 5 && n == 0; i++ {
		require.NoError(t, rdb.ZAdd(ctx, lease, redis.Z{Score: float64(time.Now().Add(-time.Minute).Unix()), Member: "lost-1"}).Err())
		n, err = s.RequeueExpired(ctx, queue, 5*time.Second, 100)
		require.NoError(t, err)
	}
	require.Equal(t, 1, n, "the task whose lease expired is put back")
	require.Eventually(t, func() bool { return runs.Load() == 2 }, 10*time.Second, 10*time.Millisecond, "asynq runs it again")
	n, err = s.RequeueExpired(ctx, queue, 5*time.Second, 100)
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestRequeueLost: of the tasks named, only those asynq still holds as
// active (their completion was never written) are put back; a task whose
// completion was written is left alone.
func TestRequeueLost(t *testing.T) {
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	const queue = "lost-test"
	release := make(chan struct{})
	var runs atomic.Int32
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 2, Queues: map[string]int{queue: 1}, LogLevel: asynq.FatalLevel,
		TaskCheckInterval: 10 * time.Millisecond,
	})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		if runs.Add(1) == 2 {
			<-release // the stuck task's first run: as if its completion were lost
		}
		return nil
	})))
	t.Cleanup(func() { close(release); srv.Shutdown() })
	client := asynq.NewClientFromRedisClient(rdb)
	_, err = client.Enqueue(asynq.NewTask("t", []byte("done")), asynq.Queue(queue), asynq.TaskID("done-1"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return runs.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return rdb.Exists(context.Background(), store.AsynqTaskPrefix(queue)+"done-1").Val() == 0 },
		10*time.Second, 10*time.Millisecond, "its completion written")
	_, err = client.Enqueue(asynq.NewTask("t", []byte("stuck")), asynq.Queue(queue), asynq.TaskID("stuck-1"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return runs.Load() == 2 }, 10*time.Second, 10*time.Millisecond)

	s := store.New(rdb)
	n, err := s.RequeueLost(context.Background(), queue, []string{"done-1", "stuck-1", "never-was"})
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the task still active")
	require.Eventually(t, func() bool { return runs.Load() == 3 }, 10*time.Second, 10*time.Millisecond, "asynq runs it again")
}
