package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func setup(t *testing.T) Config {
	t.Helper()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	return Config{
		Redis: rdb, Duration: 500 * time.Millisecond, Concurrency: 10, Clients: 4,
		BatchSize: 20, MemoryDeliveries: 200, IdleWindow: 500 * time.Millisecond, IdleTrials: 3,
	}
}

func TestRun_idle(t *testing.T) {
	cfg := setup(t)
	cfg.Phases, cfg.IdleWindow = []string{"idle"}, 2*time.Second // raw asynq looks about once a second
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Positive(t, res.Idle.CommandsPerS, "the idle worker still polls")
	require.Positive(t, res.AsynqIdle.CommandsPerS, "so does raw asynq")
	require.GreaterOrEqual(t, res.Idle.Cores, 0.0)
	if redistest.Real() {
		require.GreaterOrEqual(t, res.Idle.RedisCores, 0.0)
	}
	require.Equal(t, 3, res.IdleFirstSamples, "every first event after idle reached the partner")
	require.Positive(t, res.IdleFirstP50MS)
	require.LessOrEqual(t, res.IdleFirstP50MS, res.IdleFirstP99MS)
	require.Zero(t, res.E2EPerS, "no other phase ran")

	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	require.Contains(t, table.String(), "idle: cpu_cores, redis_commands_per_s")
	require.Contains(t, table.String(), "idle: first event, POST to partner, p50 / p99 ms (3 trials)")
	require.NotContains(t, table.String(), "e2e_deliveries_per_s", "rows of phases not run are left out")
	var js bytes.Buffer
	require.NoError(t, res.WriteJSON(&js))
	var back map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Contains(t, back["idle"], "redis_commands_per_s")
	require.Contains(t, back["asynq_idle"], "cpu_cores")
	require.Contains(t, back, "idle_first_event_p99_ms")
}

func TestRun(t *testing.T) {
	cfg := setup(t)
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	for name, v := range map[string]float64{
		"e2e": res.E2EPerS, "asynq no-op": res.AsynqNoopPerS, "enqueue": res.EnqueuePerS,
		"batch": res.EnqueueBatchPerS, "client": res.ClientEnqueuePerS, "asynq enqueue": res.AsynqEnqueuePerS,
		"asynq + GET": res.AsynqHTTPPerS, "bytes": res.RedisBytesPerDelivery, "asynq bytes": res.AsynqBytesPerTask,
		"rss": res.WorkerRSSMB,
	} {
		require.Positive(t, v, name)
	}
	require.Positive(t, res.Accepted)
	require.Equal(t, res.Accepted, res.Delivered, "every accepted event reaches the partner")
	require.Zero(t, res.Lost)
	require.Equal(t, IntakeBatch, res.E2EIntake)
	require.Equal(t, intake.DefaultBundleSize, res.BundleSize)
	require.Positive(t, res.LatencySamples)
	require.Zero(t, res.LatencyLost)
	require.LessOrEqual(t, res.LatencyP50MS, res.LatencyP99MS)
	require.InDelta(t, res.E2EPerS/res.AsynqNoopPerS, res.E2ERatio, 1e-9)
	require.InDelta(t, res.AsynqHTTPPerS/res.AsynqNoopPerS, res.AsynqHTTPRatio, 1e-9)
	require.InDelta(t, res.E2EPerS/res.AsynqHTTPPerS, res.E2ERatioHTTP, 1e-9)
	for name, c := range map[string]CPUCost{"e2e": res.E2ECPU, "asynq no-op": res.AsynqNoopCPU, "asynq + GET": res.AsynqHTTPCPU} {
		require.Positive(t, c.Process, name)
		if redistest.Real() {
			require.Positive(t, c.Redis, name)
		}
		require.InDelta(t, c.Process+c.Redis, c.Total, 1e-9, name)
	}
	require.InDelta(t, res.E2ECPU.Total/res.AsynqNoopCPU.Total, res.E2ECPURatio, 1e-9)
	if redistest.Real() {
		require.InDelta(t, res.E2ECPU.Total/res.AsynqHTTPCPU.Total, res.E2ECPURatioHTTP, 1e-9)
	}

	n, err := dbSize(context.Background(), cfg.Redis)
	require.NoError(t, err)
	require.Zero(t, n, "bench leaves the database empty")

	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	for _, want := range []string{"e2e_deliveries_per_s", "e2e_cpu_us_per_delivery", "asynq_http_tasks_per_s", "enqueue_events_per_s", "latency_p99_ms", "redis_bytes_per_pending_delivery", "worker_rss_mb", "idle: cpu_cores"} {
		require.Contains(t, table.String(), want)
	}
	var js bytes.Buffer
	require.NoError(t, res.WriteJSON(&js))
	var back map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Contains(t, back, "e2e_vs_asynq_noop")
	require.Contains(t, back, "asynq_noop_tasks_per_s")
	require.Contains(t, back, "e2e_vs_asynq_http")
	require.EqualValues(t, intake.DefaultBundleSize, back["bundle_size"])
	require.Contains(t, table.String(), "deliveries bundled by up to 50")
}

func TestRun_singleIntake(t *testing.T) {
	cfg := setup(t)
	cfg.E2EIntake, cfg.Phases = IntakeSingle, []string{"e2e"}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, IntakeSingle, res.E2EIntake)
	require.Positive(t, res.Accepted)
	require.Equal(t, res.Accepted, res.Delivered)

	cfg.E2EIntake = "carrier-pigeon"
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "carrier-pigeon")
}

func TestRun_refusesNonEmptyDatabase(t *testing.T) {
	cfg := setup(t)
	require.NoError(t, cfg.Redis.Set(context.Background(), "someone:else", "x", 0).Err())
	_, err := Run(context.Background(), cfg)
	require.True(t, errors.Is(err, ErrNotEmpty), "%v", err)
	v, err := cfg.Redis.Get(context.Background(), "someone:else").Result()
	require.NoError(t, err)
	require.Equal(t, "x", v, "nothing flushed")
}

func TestRun_rounds(t *testing.T) {
	cfg := setup(t)
	cfg.Rounds, cfg.Phases = 2, []string{"enqueue-asynq", "enqueue-single", "asynq-noop", "e2e"}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, 2, res.Rounds)
	require.Positive(t, res.E2ERatio)
	sp, ok := res.Spread["e2e_vs_asynq_noop"]
	require.True(t, ok, "%v", res.Spread)
	require.LessOrEqual(t, sp[0], res.E2ERatio)
	require.GreaterOrEqual(t, sp[1], res.E2ERatio)
	require.Contains(t, res.Spread, "enqueue_vs_asynq_enqueue")
	require.Positive(t, res.LatencySamples, "the last round measures latency")
	require.Equal(t, res.Accepted, res.Delivered)

	cfg.Rounds = 21
	_, err = Run(context.Background(), cfg)
	require.ErrorContains(t, err, "rounds")
}

func TestCombine(t *testing.T) {
	rounds := []*Result{
		{E2EPerS: 100, AsynqNoopPerS: 200, Accepted: 10, Delivered: 10, LatencyP99MS: 1},
		{E2EPerS: 300, AsynqNoopPerS: 300, Accepted: 20, Delivered: 19, LatencyP99MS: 2},
		{E2EPerS: 200, AsynqNoopPerS: 250, Accepted: 30, Delivered: 31, LatencyP99MS: 3}, // a late extra
	}
	for _, r := range rounds {
		r.ratios()
	}
	var res Result
	res.combine(rounds)
	require.Equal(t, 200.0, res.E2EPerS, "median rate")
	require.Equal(t, 250.0, res.AsynqNoopPerS)
	require.Equal(t, 0.8, res.E2ERatio, "median of the rounds' own ratios (0.5, 1, 0.8), not of the medians' quotient")
	require.Equal(t, [2]float64{0.5, 1}, res.Spread["e2e_vs_asynq_noop"])
	require.EqualValues(t, 60, res.Accepted)
	require.EqualValues(t, 1, res.Lost, "the third round's extra delivery does not hide the second's loss")
	require.Equal(t, 3.0, res.LatencyP99MS, "latency is the last round's")
	require.Equal(t, 2.5, median([]float64{1, 2, 3, 4}))
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, percentile(d, 0.50))
	require.Equal(t, 99*time.Millisecond, percentile(d, 0.99))
	require.Equal(t, time.Duration(0), percentile(nil, 0.99))
}

func TestRedisCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:9.000000\r\nused_cpu_user_main_thread:2.000000\r\n"
	require.Equal(t, 3750*time.Millisecond, redisCPU(info))
	require.Zero(t, redisCPU("# CPU\r\n"))
}

// A Redis whose INFO cpu cannot be read at either end of the window leaves
// the Redis part and the total out, never a negative figure; the combined
// cost is one round's, so its parts add up.
func TestCPUCost_unreadableRedisAndMedians(t *testing.T) {
	calls := 0
	readings := []cpuTimes{{Process: time.Second, Redis: 5 * time.Second}, {Process: 2 * time.Second, Redis: -1}}
	var n atomic.Int64
	_, per := windowCost(context.Background(), time.Millisecond, 20*time.Millisecond, n.Load, func() cpuTimes {
		c := readings[min(calls, 1)]
		calls++
		return c
	}, func(ctx context.Context) {
		for ctx.Err() == nil {
			n.Add(1)
			time.Sleep(time.Millisecond)
		}
	})
	require.Equal(t, 2, calls)
	require.Positive(t, per.Process)
	require.Equal(t, time.Duration(-1), per.Redis)
	var res Result
	res.E2ECPU = costOf(per)
	require.Positive(t, res.E2ECPU.Process)
	require.Zero(t, res.E2ECPU.Redis)
	require.Zero(t, res.E2ECPU.Total, "no total without Redis's part")

	rounds := []*Result{
		{E2ECPU: CPUCost{Total: 100, Process: 90, Redis: 10}},
		{E2ECPU: CPUCost{Total: 300, Process: 100, Redis: 200}},
		{E2ECPU: CPUCost{Total: 200, Process: 150, Redis: 50}},
	}
	var r Result
	r.combine(rounds)
	require.Equal(t, CPUCost{Total: 200, Process: 150, Redis: 50}, r.E2ECPU)
}

// On a Redis Cluster with shards, the end-to-end phase reports each
// master's part of the commands.
func TestRun_clusterShares(t *testing.T) {
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	c := redistest.StartCluster(t, 3)
	rdb, err := store.OpenRedis(c.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := Config{Redis: rdb, Duration: 500 * time.Millisecond, Concurrency: 10, Clients: 4, BatchSize: 20,
		Shards: 6, Phases: []string{"e2e"}}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, res.E2EMasterCommands, 3)
	var sum float64
	for _, m := range res.E2EMasterCommands {
		require.Positive(t, m.Commands, m.Addr)
		sum += m.Share
	}
	require.InDelta(t, 1, sum, 1e-9)
	require.Positive(t, res.E2ECPU.Redis, "Redis CPU, summed over the masters")
	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	require.Contains(t, table.String(), "e2e_commands_per_master (Redis Cluster)")
}
