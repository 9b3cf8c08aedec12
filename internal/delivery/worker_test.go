package delivery_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
)

func TestWorkerDequeuers(t *testing.T) {
	require.Equal(t, 1, delivery.DefaultDequeuers(1))
	require.Equal(t, 2, delivery.DefaultDequeuers(11))
	require.Equal(t, 8, delivery.DefaultDequeuers(49))
	require.Equal(t, 16, delivery.DefaultDequeuers(100))
	require.Equal(t, 16, delivery.DefaultDequeuers(10_000))
	require.Equal(t, []int{4, 3, 3}, delivery.SplitConcurrency(10, 3))
	require.Equal(t, []int{25, 25, 25, 25}, delivery.SplitConcurrency(100, 4))
	live := config.NewLive(stacktest.Config(t, workerYAML))
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	for _, c := range []struct{ concurrency, asked, want int }{
		{100, 0, 16}, {10, 3, 3}, {2, 5, 2}, {10, -1, 2}, {1, 0, 1},
	} {
		w, err := delivery.NewWorker(delivery.WorkerConfig{Redis: rdb, Config: live, Concurrency: c.concurrency, Dequeuers: c.asked})
		require.NoError(t, err)
		require.Equal(t, c.want, w.Dequeuers(), "concurrency %d, dequeuers %d", c.concurrency, c.asked)
		w.Shutdown()
	}
}

const workerYAML = `
api:
  keys: ["k-0123456789abcdef"]
partners:
  - id: acme_ads
    url: "https://acme.example/c?c={click_id}"
`

// A config loaded for intake only has no templates or signers: a worker
// must refuse it rather than fail on every delivery.
func TestNewWorker_RefusesIntakeOnlyConfig(t *testing.T) {
	t.Parallel()
	cfg, err := config.ParseIntake("postback.yaml", []byte(workerYAML), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	_, err = delivery.NewWorker(delivery.WorkerConfig{Redis: rdb, Config: config.NewLive(cfg)})
	require.ErrorContains(t, err, "loaded for intake only")
}
