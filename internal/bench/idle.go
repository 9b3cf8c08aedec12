package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/delivery"
)

// idleIdleAfter is the worker's IdleAfter in the first-event trials:
// short, so that 50 trials take well under a minute. Once a worker has
// gone idle nothing about it changes with time (one processor polling,
// the wake-up subscription, Redis connections kept for 30 min, partner
// keep-alives for 90 s), so an event a moment after it went idle meets
// the same worker as one after an idle minute.
const idleIdleAfter = 300 * time.Millisecond

// idleSettle is how long a trial waits once the worker is idle.
const idleSettle = 200 * time.Millisecond

// idle measures, with no traffic, the CPU of this process and of Redis
// and the commands Redis runs, over IdleWindow: first raw asynq with its
// default config (one server, the default queue), then postback's worker
// as the end-to-end phase runs it. The in-process API runs during both.
// Then, IdleTrials times, it lets the worker go idle, POSTs one event and
// times it to the partner.
func (r *run) idle(ctx context.Context, res *Result) error {
	srv := asynq.NewServerFromRedisClient(r.cfg.Redis, asynq.Config{LogLevel: asynq.ErrorLevel, Logger: asynqLogger{r.cfg.Logger}})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		return err
	}
	base, err := r.idleCost(ctx)
	srv.Shutdown()
	if err != nil {
		return err
	}
	res.AsynqIdle = base

	w, err := delivery.NewWorker(delivery.WorkerConfig{
		Redis: r.cfg.Redis, Config: r.live, Concurrency: r.cfg.Concurrency, Dequeuers: r.cfg.Dequeuers, Logger: r.cfg.Logger,
		PollInterval: r.cfg.PollInterval, ShutdownTimeout: 10 * time.Second, Tracer: r.tracer,
		IdleAfter: idleIdleAfter,
	})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Shutdown()
	if res.Idle, err = r.idleCost(ctx); err != nil {
		return err
	}

	lat := make([]time.Duration, 0, r.cfg.IdleTrials)
	for k := range int64(r.cfg.IdleTrials) {
		if !waitFor(ctx, 10*time.Second, func() bool { return !w.Awake() }) {
			return errors.New("the worker did not go idle")
		}
		if !sleep(ctx, idleSettle) {
			return ctx.Err()
		}
		id := r.eventID(3_000_000_000 + k)
		t0 := time.Now()
		if ok, err := r.post(ctx, id); !ok {
			return fmt.Errorf("first event after idle: %w", err)
		}
		if !waitFor(ctx, 10*time.Second, func() bool { _, ok := r.partner.firstReceipt(id); return ok }) {
			return fmt.Errorf("first event after idle: %s not delivered within 10s", id)
		}
		t1, _ := r.partner.firstReceipt(id)
		lat = append(lat, t1.Sub(t0))
	}
	slices.Sort(lat)
	res.IdleFirstSamples = len(lat)
	res.IdleFirstP50MS = ms(percentile(lat, 0.50))
	res.IdleFirstP99MS = ms(percentile(lat, 0.99))
	return nil
}

// idleCost measures, after a second to settle, IdleWindow with no traffic.
func (r *run) idleCost(ctx context.Context) (IdleCost, error) {
	if !sleep(ctx, time.Second) {
		return IdleCost{}, ctx.Err()
	}
	n0, err := r.commandsProcessed(ctx)
	if err != nil {
		return IdleCost{}, err
	}
	c0, t0 := r.cpuNow(), time.Now()
	if !sleep(ctx, r.cfg.IdleWindow) {
		return IdleCost{}, ctx.Err()
	}
	c1, t1 := r.cpuNow(), time.Now()
	n1, err := r.commandsProcessed(ctx)
	if err != nil {
		return IdleCost{}, err
	}
	secs := t1.Sub(t0).Seconds()
	cost := IdleCost{
		Cores: (c1.Process - c0.Process).Seconds() / secs,
		// Less the bench's own reads: two INFO cpu and this INFO stats.
		CommandsPerS: float64(n1-n0-3) / secs,
	}
	if c0.Redis >= 0 && c1.Redis >= 0 {
		cost.RedisCores = (c1.Redis - c0.Redis).Seconds() / secs
	}
	return cost, nil
}

// commandsProcessed is Redis's total_commands_processed.
func (r *run) commandsProcessed(ctx context.Context) (int64, error) {
	info, err := r.cfg.Redis.Info(ctx, "stats").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("INFO stats has no total_commands_processed")
}
