package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/wire"
)

// Raw asynq baseline names: its own task type and queue.
const (
	rawType  = "bench:noop"
	rawQueue = "bench_raw"
)

// memory stores MemoryDeliveries deliveries with no worker running and
// divides Redis's used_memory growth by their number; then the same for as
// many raw asynq tasks carrying the same payload.
func (r *run) memory(ctx context.Context, res *Result) error {
	n := r.cfg.MemoryDeliveries
	ev, err := event.DecodeEvent(eventJSON(nil, "template"), time.Now())
	if err != nil {
		return err
	}
	enqueue := func(first int64, count int) error {
		var l load
		l.seq.Store(first)
		var sent atomic.Int64
		l.drive(ctx, min(r.cfg.Clients, count), 1, nil, func(ctx context.Context, k int64) (int, error) {
			if k >= first+int64(count) {
				return 0, errStop
			}
			e := *ev
			e.ID, e.ClickID = r.eventID(k), "ck-"+r.eventID(k)
			if _, err := r.client.Enqueue(ctx, &e); err != nil {
				return 0, err
			}
			sent.Add(1)
			return 1, nil
		})
		if int(sent.Load()) != count {
			return fmt.Errorf("stored %d of %d deliveries: %v", sent.Load(), count, l.err())
		}
		return nil
	}
	// A few first, so that scripts and queue keys exist before the baseline.
	if err := enqueue(1_000_000_000, 20); err != nil {
		return err
	}
	before, err := usedMemory(ctx, r.cfg.Redis)
	if err != nil {
		return err
	}
	if err := enqueue(0, n); err != nil {
		return err
	}
	after, err := usedMemory(ctx, r.cfg.Redis)
	if err != nil {
		return err
	}
	res.RedisBytesPerDelivery = float64(after-before) / float64(n)

	if err := r.readPayload(res); err != nil {
		return err
	}
	if err := flush(ctx, r.cfg.Redis); err != nil {
		return err
	}

	aq := asynq.NewClientFromRedisClient(r.cfg.Redis)
	rawEnqueue := func(count int) error {
		var l load
		l.drive(ctx, min(r.cfg.Clients, count), 1, nil, func(ctx context.Context, k int64) (int, error) {
			if k >= int64(count) {
				return 0, errStop
			}
			_, err := aq.EnqueueContext(ctx, asynq.NewTask(rawType, r.payload, asynq.Queue(rawQueue)))
			if err != nil {
				return 0, err
			}
			return 1, nil
		})
		if l.accepted.Load() != int64(count) {
			return fmt.Errorf("stored %d of %d raw asynq tasks: %v", l.accepted.Load(), count, l.err())
		}
		return nil
	}
	if err := rawEnqueue(20); err != nil {
		return err
	}
	before, err = usedMemory(ctx, r.cfg.Redis)
	if err != nil {
		return err
	}
	if err := rawEnqueue(n); err != nil {
		return err
	}
	after, err = usedMemory(ctx, r.cfg.Redis)
	if err != nil {
		return err
	}
	res.AsynqBytesPerTask = float64(after-before) / float64(n)
	return nil
}

// readPayload reads back a stored delivery task's payload, which the raw
// asynq baselines carry.
func (r *run) readPayload(res *Result) error {
	insp := asynq.NewInspectorFromRedisClient(r.cfg.Redis)
	tasks, err := insp.ListPendingTasks(wire.QueueDefault, asynq.PageSize(1))
	if err == nil && len(tasks) == 0 { // held by a delay
		tasks, err = insp.ListScheduledTasks(wire.QueueDefault, asynq.PageSize(1))
	}
	if (err != nil || len(tasks) == 0) && r.cfg.Shards > 1 {
		tasks, err = anyShardTask(insp, r.cfg.Shards)
	}
	if err != nil || len(tasks) == 0 {
		return fmt.Errorf("read back a delivery task: %v", err)
	}
	r.payload = tasks[0].Payload
	res.PayloadBytes = len(r.payload)
	return nil
}

// samplePayload stores one delivery and reads its payload back, for runs
// without the memory phase.
func (r *run) samplePayload(ctx context.Context, res *Result) error {
	ev, err := event.DecodeEvent(eventJSON(nil, "template"), time.Now())
	if err != nil {
		return err
	}
	ev.ID, ev.ClickID = r.eventID(3_000_000_000), "ck-sample"
	if _, err := r.client.Enqueue(ctx, ev); err != nil {
		return err
	}
	if err := r.readPayload(res); err != nil {
		return err
	}
	return flush(ctx, r.cfg.Redis)
}

// half is the length of the enqueue-only phases, which run without workers
// and so fill Redis as long as they last.
func (r *run) half() time.Duration { return r.cfg.Duration / 2 }

func (r *run) warm() time.Duration { return min(time.Second, r.cfg.Duration/5) }

// enqueueAsynq measures raw asynq Client.Enqueue with the same payload.
func (r *run) enqueueAsynq(ctx context.Context, res *Result) error {
	aq := asynq.NewClientFromRedisClient(r.cfg.Redis)
	var l load
	res.AsynqEnqueuePerS = windowRate(ctx, r.warm(), r.half(), l.accepted.Load, func(ctx context.Context) {
		l.drive(ctx, r.cfg.Clients, 1, nil, func(ctx context.Context, _ int64) (int, error) {
			if _, err := aq.EnqueueContext(ctx, asynq.NewTask(rawType, r.payload, asynq.Queue(rawQueue))); err != nil {
				return 0, err
			}
			return 1, nil
		})
	})
	return phaseErr(&l, ctx)
}

// enqueueClient measures intake.Client.Enqueue, straight to Redis.
func (r *run) enqueueClient(ctx context.Context, res *Result) error {
	ev, err := event.DecodeEvent(eventJSON(nil, "template"), time.Now())
	if err != nil {
		return err
	}
	var l load
	res.ClientEnqueuePerS = windowRate(ctx, r.warm(), r.half(), l.accepted.Load, func(ctx context.Context) {
		l.drive(ctx, r.cfg.Clients, 1, nil, func(ctx context.Context, k int64) (int, error) {
			e := *ev
			e.ID, e.ClickID = r.eventID(k), "ck-"+r.eventID(k)
			if _, err := r.client.Enqueue(ctx, &e); err != nil {
				return 0, err
			}
			return 1, nil
		})
	})
	return phaseErr(&l, ctx)
}

// enqueueSingle measures POST /v1/events, one event a request.
func (r *run) enqueueSingle(ctx context.Context, res *Result) error {
	var l load
	res.EnqueuePerS = windowRate(ctx, r.warm(), r.half(), l.accepted.Load, func(ctx context.Context) {
		l.drive(ctx, r.cfg.Clients, 1, nil, func(ctx context.Context, k int64) (int, error) {
			ok, err := r.post(ctx, r.eventID(k))
			if !ok {
				return 0, err
			}
			return 1, nil
		})
	})
	return phaseErr(&l, ctx)
}

// enqueueBatch measures POST /v1/events/batch with BatchSize events each.
// An API without the batch endpoint leaves the figure out.
func (r *run) enqueueBatch(ctx context.Context, res *Result) error {
	var l load
	rate := windowRate(ctx, r.warm(), r.half(), l.accepted.Load, func(ctx context.Context) {
		l.drive(ctx, r.cfg.Clients, r.cfg.BatchSize, nil, func(ctx context.Context, first int64) (int, error) {
			return r.postBatch(ctx, first, r.cfg.BatchSize)
		})
	})
	if errors.Is(l.err(), errNoBatch) {
		res.Notes = append(res.Notes, "batch enqueue not measured: the API has no POST /v1/events/batch")
		return nil
	}
	res.EnqueueBatchPerS = rate
	return phaseErr(&l, ctx)
}

// asynqNoop measures raw asynq end to end: producers enqueue, a server
// with the same concurrency runs a handler that does nothing.
func (r *run) asynqNoop(ctx context.Context, res *Result) error {
	rate, cpu, err := r.noop(ctx, 1)
	res.AsynqNoopPerS = rate
	res.AsynqNoopCPU = costOf(cpu)
	return err
}

// asynqNoopSameDequeuers measures raw asynq as asynqNoop does, with the
// concurrency shared by as many servers as the worker runs processors.
func (r *run) asynqNoopSameDequeuers(ctx context.Context, res *Result) error {
	if r.cfg.Dequeuers <= 1 {
		return nil
	}
	rate, _, err := r.noop(ctx, r.cfg.Dequeuers)
	res.AsynqNoopSameDequeuersPS = rate
	return err
}

// asynqHTTP measures raw asynq whose handler makes the one HTTP request a
// postback is: a GET to the same loopback partner, with net/http's client
// and nothing else (no template, no record, no intake). It is the ceiling
// of any asynq worker that sends one task per request on this machine;
// bundles, several deliveries a task, can pass it.
// getPartner sends the raw asynq baselines' GET to the bench partner.
func getPartner(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench partner answered %s", resp.Status)
	}
	return nil
}

func (r *run) asynqHTTP(ctx context.Context, res *Result) error {
	tr := &http.Transport{MaxIdleConnsPerHost: r.cfg.Concurrency, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	base := "http://" + r.partner.addr + "/pb?e=" + r.prefix + "h"
	var n atomic.Int64
	rate, cpu, err := r.rawAsynq(ctx, 1, func(ctx context.Context, _ *asynq.Task) error {
		return getPartner(ctx, hc, base+strconv.FormatInt(n.Add(1), 10))
	})
	res.AsynqHTTPPerS = rate
	res.AsynqHTTPCPU = costOf(cpu)
	return err
}

func (r *run) noop(ctx context.Context, servers int) (float64, cpuTimes, error) {
	return r.rawAsynq(ctx, servers, func(context.Context, *asynq.Task) error { return nil })
}

// rawAsynq measures raw asynq end to end with handler: producers enqueue
// with Client.Enqueue, servers sharing the worker's concurrency run the
// tasks, and a task counts when handler returns nil.
func (r *run) rawAsynq(ctx context.Context, servers int, handler func(context.Context, *asynq.Task) error) (float64, cpuTimes, error) {
	var processed atomic.Int64
	for _, share := range delivery.SplitConcurrency(r.cfg.Concurrency, servers) {
		srv := asynq.NewServerFromRedisClient(r.cfg.Redis, asynq.Config{
			Concurrency:       share,
			Queues:            map[string]int{rawQueue: 1},
			TaskCheckInterval: r.cfg.PollInterval,
			LogLevel:          asynq.ErrorLevel,
			Logger:            asynqLogger{r.cfg.Logger},
		})
		if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			if err := handler(ctx, t); err != nil {
				return err
			}
			processed.Add(1)
			return nil
		})); err != nil {
			return 0, cpuTimes{}, err
		}
		defer srv.Shutdown()
	}
	aq := asynq.NewClientFromRedisClient(r.cfg.Redis)
	var l load
	hold := func() bool { return l.accepted.Load()-processed.Load() > int64(r.cfg.Backlog) }
	rate, cpu := windowCost(ctx, r.warm(), r.cfg.Duration, processed.Load, r.cpuNow, func(ctx context.Context) {
		l.drive(ctx, r.cfg.Clients, 1, hold, func(ctx context.Context, _ int64) (int, error) {
			if _, err := aq.EnqueueContext(ctx, asynq.NewTask(rawType, r.payload, asynq.Queue(rawQueue))); err != nil {
				return 0, err
			}
			return 1, nil
		})
	})
	return rate, cpu, phaseErr(&l, ctx)
}

// endToEnd measures deliveries per second through the whole pipeline,
// checks that every accepted event reached the partner, then measures
// latency at half that rate with the same worker.
func (r *run) endToEnd(ctx context.Context, res *Result) error {
	w, err := delivery.NewWorker(delivery.WorkerConfig{
		Redis: r.cfg.Redis, Config: r.live, Concurrency: r.cfg.Concurrency, Dequeuers: r.cfg.Dequeuers, Logger: r.cfg.Logger,
		PollInterval: r.cfg.PollInterval, ShutdownTimeout: 10 * time.Second, Tracer: r.tracer,
	})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Shutdown()

	var l load
	hold := func() bool { return l.accepted.Load()-r.partner.unique() > int64(r.cfg.Backlog) }
	var cpu cpuTimes
	calls, err := masterCalls(ctx, r.cfg.Redis) // nil off a cluster
	if err != nil {
		return err
	}
	res.E2EPerS, cpu = windowCost(ctx, r.warm(), r.cfg.Duration, r.partner.unique, r.cpuNow, func(ctx context.Context) {
		if r.cfg.E2EIntake == IntakeBatch {
			l.drive(ctx, r.cfg.Clients, r.cfg.BatchSize, hold, func(ctx context.Context, first int64) (int, error) {
				return r.postBatch(ctx, first, r.cfg.BatchSize)
			})
			return
		}
		l.drive(ctx, r.cfg.Clients, 1, hold, func(ctx context.Context, k int64) (int, error) {
			ok, err := r.post(ctx, r.eventID(k))
			if !ok {
				return 0, err
			}
			return 1, nil
		})
	})
	if errors.Is(l.err(), errNoBatch) {
		return errors.New("the API has no POST /v1/events/batch; measure with --e2e-intake single")
	}
	if calls != nil && r.lastRound {
		after, err := masterCalls(ctx, r.cfg.Redis)
		if err != nil {
			return err
		}
		res.E2EMasterCommands = masterShares(calls, after)
	}
	if r.cfg.APIURL == "" {
		res.E2ECPU = costOf(cpu)
	} else if r.lastRound {
		res.Notes = append(res.Notes, "e2e CPU per delivery not measured: the API runs in another process (--api-url)")
	}
	if err := phaseErr(&l, ctx); err != nil {
		return err
	}
	accepted := l.accepted.Load()
	waitFor(ctx, time.Minute, func() bool { return r.partner.unique() >= accepted })
	res.Accepted, res.Delivered = accepted, r.partner.unique()
	res.Duplicates = r.partner.received.Load() - res.Delivered
	if res.E2EPerS <= 0 {
		return errors.New("nothing was delivered")
	}
	if !r.lastRound {
		return nil
	}
	return r.latency(ctx, res, res.E2EPerS/2)
}

// latency sends events at rate (open loop) for Duration, one by one or in
// batches as the throughput phase did (Config.E2EIntake), and measures, per
// event, the time from the start of its POST to its arrival at the partner.
func (r *run) latency(ctx context.Context, res *Result, rate float64) error {
	r.partner.reset()
	res.LatencyRatePerS = rate
	base := int64(2_000_000_000)
	unit := 1 // events per request: as the throughput phase sends them
	if r.cfg.E2EIntake == IntakeBatch {
		unit = r.cfg.BatchSize
	}
	tokens := make(chan int64, r.cfg.Clients)
	go func() {
		defer close(tokens)
		start := time.Now()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var emitted int64
		for time.Since(start) < r.cfg.Duration {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			want := int64(rate * time.Since(start).Seconds() / float64(unit))
			for ; emitted < want; emitted++ {
				select {
				case tokens <- base + emitted*int64(unit):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	var mu sync.Mutex
	sent := make(map[string]time.Time)
	var l load
	var wg sync.WaitGroup
	for range r.cfg.Clients {
		wg.Go(func() {
			for first := range tokens {
				t0 := time.Now()
				var ok bool
				var err error
				if unit == 1 {
					ok, err = r.post(ctx, r.eventID(first))
				} else {
					var n int
					n, err = r.postBatch(ctx, first, unit)
					ok = err == nil && n == unit
					if err == nil && !ok {
						err = fmt.Errorf("latency: a batch of %d had %d accepted", unit, n)
					}
				}
				if !ok {
					if err != nil && l.err() == nil {
						l.errMu.Lock()
						l.firstErr = err
						l.errMu.Unlock()
					}
					continue
				}
				mu.Lock()
				for i := range int64(unit) {
					sent[r.eventID(first+i)] = t0
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(sent) == 0 {
		return fmt.Errorf("latency: nothing accepted: %v", l.err())
	}
	waitFor(ctx, 30*time.Second, func() bool { return r.partner.unique() >= int64(len(sent)) })
	lat := make([]time.Duration, 0, len(sent))
	for id, t0 := range sent {
		if t1, ok := r.partner.firstReceipt(id); ok {
			lat = append(lat, t1.Sub(t0))
		}
	}
	res.LatencySamples = len(lat)
	res.LatencyLost = len(sent) - len(lat)
	slices.Sort(lat)
	res.LatencyP50MS = ms(percentile(lat, 0.50))
	res.LatencyP99MS = ms(percentile(lat, 0.99))
	return nil
}

// percentile is the nearest-rank q-quantile of sorted d.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// phaseErr fails a phase in which nothing at all was accepted.
func phaseErr(l *load, ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.accepted.Load() == 0 {
		return fmt.Errorf("nothing was accepted: %v", l.err())
	}
	return nil
}

// asynqLogger sends the baseline server's messages to slog.
type asynqLogger struct {
	l interface{ Error(string, ...any) }
}

func (a asynqLogger) Debug(...any)      {}
func (a asynqLogger) Info(...any)       {}
func (a asynqLogger) Warn(args ...any)  { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq")
	os.Exit(1) // asynq's Logger contract: Fatal does not return
}
