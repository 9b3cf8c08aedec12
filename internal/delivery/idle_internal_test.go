package delivery

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
)

// TestScaler_WakesOnPublish: a scaler with no lead starts its servers
// only on a wake-up published on the channel intake publishes on (the
// first at once, the rest a moment later), and stops them IdleAfter
// after the last wake-up. Not parallel: wake-ups cross Redis databases.
func TestScaler_WakesOnPublish(t *testing.T) {
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	var built atomic.Int32
	s := newScaler(scalerParams{
		Redis: rdb, Shares: []int{1, 1, 1}, IdleAfter: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		NewServer: func(share int) *asynq.Server {
			built.Add(1)
			return asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: share, Queues: map[string]int{"scaler_test": 1}, LogLevel: asynq.ErrorLevel})
		},
	})
	s.start(asynq.NewServeMux())
	t.Cleanup(s.shutdown)
	require.False(t, s.awake.Load())
	// Publish until heard: the subscription is made in the background.
	require.Eventually(t, func() bool {
		require.NoError(t, store.New(rdb).Wake(context.Background()))
		return s.awake.Load()
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return built.Load() == 3 }, 10*time.Second, 10*time.Millisecond, "every server started")
	require.Eventually(t, func() bool { return !s.awake.Load() }, 10*time.Second, 10*time.Millisecond, "idle again")
	s.mu.Lock()
	require.Empty(t, s.running)
	s.mu.Unlock()
}
