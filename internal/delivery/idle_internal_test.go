package delivery

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
)

// testScaler is a scaler of three servers after a lead of 1 slot (the
// rest start at 1 task in flight), counting the servers it builds.
func testScaler(t *testing.T, idleAfter time.Duration, hold ...func() bool) (*scaler, redis.UniversalClient, *atomic.Int32) {
	t.Helper()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	built := &atomic.Int32{}
	var h func() bool
	if len(hold) > 0 {
		h = hold[0]
	}
	s := newScaler(scalerParams{
		Redis: rdb, LeadShare: 1, Shares: []int{1, 1, 1}, IdleAfter: idleAfter, Hold: h, Logger: slog.New(slog.DiscardHandler),
		NewServer: func(_, share int) *asynq.Server {
			built.Add(1)
			return asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: share, Queues: map[string]int{"scaler_test": 1}, LogLevel: asynq.ErrorLevel})
		},
	})
	s.start(asynq.NewServeMux())
	t.Cleanup(s.shutdown)
	return s, rdb, built
}

// TestScaler_WakesOnPublish: a scaler with no lead starts a server only
// on a wake-up published on the channel intake publishes on, and only
// one while nothing is in flight; it stops it IdleAfter after the last
// wake-up. Not parallel: wake-ups cross Redis databases.
func TestScaler_WakesOnPublish(t *testing.T) {
	s, rdb, built := testScaler(t, 300*time.Millisecond)
	require.False(t, s.awake())
	// Publish until heard: the subscription is made in the background.
	require.Eventually(t, func() bool {
		require.NoError(t, store.New(rdb).Wake(context.Background()))
		return s.awake()
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return !s.awake() }, 10*time.Second, 10*time.Millisecond, "idle again")
	require.EqualValues(t, 1, built.Load(), "one server for a wake-up with nothing in flight")
	s.mu.Lock()
	require.Nil(t, s.first)
	s.mu.Unlock()
}

// TestScaler_StartsTheRestWhenBusy: tasks in flight at half the slots of
// the lead and the first server start the rest; once they end, the rest
// stop, then the first.
func TestScaler_StartsTheRestWhenBusy(t *testing.T) {
	s, _, built := testScaler(t, 300*time.Millisecond)
	s.taskStarted() // as the lead taking a task would
	require.Eventually(t, func() bool { return s.level.Load() == 2 }, 10*time.Second, 10*time.Millisecond, "all started")
	require.EqualValues(t, 3, built.Load())
	s.taskDone()
	require.Eventually(t, func() bool { return s.level.Load() == 0 }, 10*time.Second, 10*time.Millisecond, "all stopped")
	s.mu.Lock()
	require.Nil(t, s.first)
	require.Empty(t, s.rest)
	s.mu.Unlock()
}

// TestScaler_StartsTheRestOnQuickTasks: tasks that end as soon as they
// start never fill the slots, but starting at busyStarts a busyWindow
// they call for the rest too.
func TestScaler_StartsTheRestOnQuickTasks(t *testing.T) {
	s, _, built := testScaler(t, 300*time.Millisecond)
	s.busyAt = 1000 // the slots never fill
	require.Eventually(t, func() bool {
		for range busyStarts {
			s.taskStarted()
			s.taskDone()
		}
		return s.level.Load() == 2
	}, 10*time.Second, 10*time.Millisecond, "all started")
	require.EqualValues(t, 3, built.Load())
	require.Eventually(t, func() bool { return s.level.Load() == 0 }, 10*time.Second, 10*time.Millisecond, "all stopped")
}

// TestScaler_HoldsDuringOutage: while Redis is out (Hold true), tasks
// neither start nor end, and no server stops: one shut down then could
// not give its tasks back. Once the outage is over, idle servers stop.
func TestScaler_HoldsDuringOutage(t *testing.T) {
	var out atomic.Bool
	out.Store(true)
	s, _, _ := testScaler(t, 100*time.Millisecond, out.Load)
	s.taskStarted()
	require.Eventually(t, func() bool { return s.level.Load() == 2 }, 10*time.Second, 10*time.Millisecond, "all started")
	s.taskDone()
	time.Sleep(time.Second) // ten times IdleAfter
	require.EqualValues(t, 2, s.level.Load(), "nothing stops in an outage")
	out.Store(false)
	require.Eventually(t, func() bool { return s.level.Load() == 0 }, 10*time.Second, 10*time.Millisecond, "all stopped after it")
}
