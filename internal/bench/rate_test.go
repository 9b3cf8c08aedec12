package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRun_fixedRate(t *testing.T) {
	cfg := setup(t)
	cfg.Duration, cfg.Rate, cfg.Phases = time.Second, 200, []string{"asynq-rate", "e2e-rate"}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)

	// 200/s for the warm-up (a fifth of the duration) and the second
	// measured: 240 events, of which the last 200 are timed.
	require.Equal(t, 200.0, res.RatePerS)
	require.Equal(t, IntakeSingle, res.RateIntake)
	for name, f := range map[string]*RateFigures{"e2e-rate": res.E2ERate, "asynq-rate": res.AsynqRate} {
		require.NotNil(t, f, name)
		require.EqualValues(t, 240, f.Sent, name)
		require.EqualValues(t, 240, f.Delivered, name)
		require.Zero(t, f.Lost, name)
		require.Zero(t, f.Refused, name)
		require.Equal(t, 200, f.Samples, name)
		require.Positive(t, f.P50MS, name)
		require.LessOrEqual(t, f.P50MS, f.P99MS, name)
		require.LessOrEqual(t, f.P99MS, f.MaxMS, name)
		// Loose: a loaded machine (or -race) sends late, never early.
		require.Greater(t, f.AchievedPerS, 200*0.2, name)
		require.LessOrEqual(t, f.AchievedPerS, 200*1.5, name)
		require.Positive(t, f.CPU.Process, name)
	}
	require.InDelta(t, res.E2ERate.P99MS/res.AsynqRate.P99MS, res.RateP99Ratio, 1e-9)
	require.InDelta(t, res.E2ERate.P50MS/res.AsynqRate.P50MS, res.RateP50Ratio, 1e-9)

	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	for _, want := range []string{"rate_latency_p50_ms (at 200/s, intake 1/POST)", "rate_latency_p99_ms", "rate_latency_max_ms", "rate_achieved_per_s", "240 / 0 / 240 / 0"} {
		require.Contains(t, table.String(), want)
	}
	require.NotContains(t, table.String(), "e2e_deliveries_per_s", "phases that did not run have no rows")
	var js bytes.Buffer
	require.NoError(t, res.WriteJSON(&js))
	var back map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Contains(t, back, "e2e_rate")
	require.Contains(t, back, "asynq_rate")
	require.Contains(t, back, "e2e_rate_p99_vs_asynq")
}

func TestRun_fixedRateGoClient(t *testing.T) {
	cfg := setup(t)
	cfg.Rate, cfg.RateIntake, cfg.Phases = 200, IntakeClient, []string{"e2e-rate"}
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Equal(t, IntakeClient, res.RateIntake)
	require.Nil(t, res.AsynqRate)
	require.EqualValues(t, 120, res.E2ERate.Sent, "200/s for 0.5 s and a tenth of a second's warm-up")
	require.Equal(t, res.E2ERate.Sent, res.E2ERate.Delivered)
	require.Zero(t, res.RateP99Ratio, "no ratio without the baseline")
}

func TestRun_fixedRateRefusesBadConfig(t *testing.T) {
	cfg := setup(t)
	cfg.Phases = []string{"e2e-rate"}
	for name, c := range map[string]func(*Config){
		"under two events": func(c *Config) { c.Rate = 1 },
		"too fast":         func(c *Config) { c.Rate = maxRate + 1 },
		"negative":         func(c *Config) { c.Rate = -5 },
		"unknown intake":   func(c *Config) { c.RateIntake = "batch" },
	} {
		bad := cfg
		c(&bad)
		_, err := Run(context.Background(), bad)
		require.ErrorContains(t, err, "rate", name)
	}
	// Too few events only matters to the phases that send them.
	cfg.Rate = 1
	require.Error(t, cfg.withDefaults().validate())
	cfg.Phases = []string{"enqueue-asynq"}
	require.NoError(t, cfg.withDefaults().validate())
}

func TestCombine_fixedRate(t *testing.T) {
	rounds := []*Result{
		{E2ERate: &RateFigures{P50MS: 4, P99MS: 10, MaxMS: 12, Sent: 10, Delivered: 10, CPU: CPUCost{Total: 300, Process: 200, Redis: 100}}, AsynqRate: &RateFigures{P50MS: 8, P99MS: 20, MaxMS: 30}},
		{E2ERate: &RateFigures{P50MS: 2, P99MS: 30, MaxMS: 40, Sent: 10, Delivered: 9, CPU: CPUCost{Total: 100, Process: 90, Redis: 10}}, AsynqRate: &RateFigures{P50MS: 8, P99MS: 20, MaxMS: 25}},
		{E2ERate: &RateFigures{P50MS: 3, P99MS: 20, MaxMS: 22, Sent: 10, Delivered: 10, CPU: CPUCost{Total: 200, Process: 150, Redis: 50}}, AsynqRate: &RateFigures{P50MS: 6, P99MS: 10, MaxMS: 11}},
	}
	for _, r := range rounds {
		r.ratios()
		r.E2ERate.Lost = r.E2ERate.Sent - r.E2ERate.Delivered
	}
	var res Result
	res.combine(rounds)
	require.Equal(t, 3.0, res.E2ERate.P50MS)
	require.Equal(t, 20.0, res.E2ERate.P99MS)
	require.Equal(t, 40.0, res.E2ERate.MaxMS, "the highest round's maximum")
	require.Equal(t, CPUCost{Total: 200, Process: 150, Redis: 50}, res.E2ERate.CPU)
	require.EqualValues(t, 1, res.E2ERate.Lost)
	// p99 ratios per round: 0.5, 1.5, 2.
	require.Equal(t, 1.5, res.RateP99Ratio)
	require.Equal(t, [2]float64{0.5, 2}, res.Spread["e2e_rate_p99_vs_asynq"])
}

// A send slower than the interval between events does not slow the
// schedule: the next events start anyway, many at once, and each event's
// latency counts from its planned start, so it includes the wait.
func TestAtRate_openLoop(t *testing.T) {
	cfg := setup(t)
	cfg.Duration, cfg.Rate = 500*time.Millisecond, 200
	p, err := startPartner("127.0.0.1:0")
	require.NoError(t, err)
	defer p.close()
	r := &run{cfg: cfg.withDefaults(), partner: p, prefix: "t-"}
	const hold = 100 * time.Millisecond // 20 intervals
	var inFlight, most atomic.Int64
	var res Result
	f, err := r.atRate(context.Background(), &res, "test", 0, func(ctx context.Context, id string) error {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(hold)
		inFlight.Add(-1)
		resp, err := http.Get("http://" + p.addr + "/pb?e=" + id)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
	require.NoError(t, err)
	require.EqualValues(t, 120, f.Sent)
	require.EqualValues(t, 120, f.Delivered)
	require.Greater(t, most.Load(), int64(cfg.Clients), "events overlap: none waits for an earlier one")
	require.GreaterOrEqual(t, f.P50MS, ms(hold), "latency counts from the planned start")
	require.Empty(t, res.Notes)
}

// Refused events are counted and named in a note, and are neither sent
// nor lost.
func TestAtRate_refused(t *testing.T) {
	cfg := setup(t)
	cfg.Duration, cfg.Rate = 500*time.Millisecond, 200
	p, err := startPartner("127.0.0.1:0")
	require.NoError(t, err)
	defer p.close()
	r := &run{cfg: cfg.withDefaults(), partner: p, prefix: "t-"}
	var res Result
	f, err := r.atRate(context.Background(), &res, "test", 0, func(ctx context.Context, id string) error {
		if strings.HasSuffix(id, "0") {
			return errors.New("no room")
		}
		resp, err := http.Get("http://" + p.addr + "/pb?e=" + id)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
	require.NoError(t, err)
	require.EqualValues(t, 12, f.Refused, "t-0, t-10, … t-110")
	require.EqualValues(t, 108, f.Sent)
	require.EqualValues(t, 108, f.Delivered)
	require.Zero(t, f.Lost)
	require.Len(t, res.Notes, 1)
	require.Contains(t, res.Notes[0], "12 of 120 events refused, the first with: no room")
}
