package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/netguard"
	"github.com/postbackhq/postback/internal/opsevent"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/version"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	// Redis holds the queues. Required.
	Redis redis.UniversalClient
	// Config is the config in force. Required.
	Config *config.Live
	// Concurrency is how many deliveries run at once. Default 100.
	Concurrency int
	// Dequeuers is how many asynq processors share Concurrency, each
	// taking tasks from Redis in its own loop. An asynq processor takes
	// one task per round trip, one after the other, so under load that
	// round trip, not the CPU, bounds it. Default DefaultDequeuers.
	Dequeuers int
	// Logger; default slog.Default().
	Logger *slog.Logger
	// PollInterval is how often each asynq processor of an awake worker
	// looks for new deliveries when the queues are empty (asynq sleeps
	// between half and 1.5 times it). Default 20ms.
	PollInterval time.Duration
	// IdlePollInterval is how often the one processor an idle worker
	// keeps looks for deliveries. Intake wakes idle workers when it
	// stores deliveries, so this bounds only the wait of a task that
	// comes without a wake-up (a retry come due, a lost wake-up).
	// Default 200ms.
	IdlePollInterval time.Duration
	// IdleAfter is how long after its last task a worker stops all its
	// asynq processors but one, and how long the tasks in flight must stay
	// under half the slots of two processors before it stops all but two.
	// Default 5s.
	IdleAfter time.Duration
	// ScheduleInterval is how often retries that came due are moved back
	// to the queue. Default 1s.
	ScheduleInterval time.Duration
	// ShutdownTimeout is how long in-flight deliveries may take to finish
	// at shutdown. Default 30s.
	ShutdownTimeout time.Duration
	// Resolver overrides DNS for the sender (tests). Default the system's.
	Resolver netguard.Resolver
	// Isolation tunes the per-partner rate limits, concurrency caps and
	// circuit breakers; its Redis and Logger default to the worker's. See
	// GateConfig for the defaults.
	Isolation GateConfig
	// StatsInterval is how often the DLQ size, queue pending and circuit
	// gauges are refreshed from Redis. Default 15s.
	StatsInterval time.Duration
	// PauseInterval is how often the worker reads which partners are
	// paused: a pause or a resume takes effect within about that long.
	// Default 1s.
	PauseInterval time.Duration
	// RecoverInterval is how often the worker looks for tasks that a
	// processor took and lost (their asynq lease expired, as when Redis
	// froze under them) to put them back in the queue. Default 1s.
	RecoverInterval time.Duration
	// Tracer makes a span per attempt (see HandlerConfig.Tracer). Default
	// nil: no tracing.
	Tracer *tracing.Tracer
}

// recoverGrace is how long past its asynq lease a task is left to the
// processor that holds it: leases are whole seconds, and the processor
// stops writing a task once it sees its lease run out.
const recoverGrace = 5 * time.Second

func (c WorkerConfig) withDefaults() WorkerConfig {
	c.Concurrency = cmp.Or(c.Concurrency, 100)
	if c.Dequeuers <= 0 {
		c.Dequeuers = DefaultDequeuers(c.Concurrency)
	}
	c.Dequeuers = min(c.Dequeuers, c.Concurrency)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.PollInterval = cmp.Or(c.PollInterval, 20*time.Millisecond)
	c.IdlePollInterval = cmp.Or(c.IdlePollInterval, 200*time.Millisecond)
	c.IdleAfter = cmp.Or(c.IdleAfter, 5*time.Second)
	c.ScheduleInterval = cmp.Or(c.ScheduleInterval, time.Second)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, 30*time.Second)
	c.StatsInterval = cmp.Or(c.StatsInterval, 15*time.Second)
	c.RecoverInterval = cmp.Or(c.RecoverInterval, time.Second)
	c.PauseInterval = cmp.Or(c.PauseInterval, time.Second)
	c.Isolation.Redis = cmp.Or(c.Isolation.Redis, c.Redis)
	c.Isolation.Logger = cmp.Or(c.Isolation.Logger, c.Logger)
	return c
}

// DefaultDequeuers is WorkerConfig.Dequeuers's default: one asynq
// processor per 6 deliveries in flight, at least 2 (1 at concurrency 1)
// and at most 16. More processors keep more tasks in flight under load;
// an idle worker runs only one of them (see IdleAfter), so they cost
// nothing idle (docs/design.md has the measurements).
func DefaultDequeuers(concurrency int) int { return max(min(concurrency, 2), min(concurrency/6, 16)) }

// SplitConcurrency shares total among n asynq processors as evenly as it
// goes: the first total%n get one more.
func SplitConcurrency(total, n int) []int {
	shares := make([]int, n)
	for i := range shares {
		shares[i] = total / n
		if i < total%n {
			shares[i]++
		}
	}
	return shares
}

// ProcessorQueues are the queues, with their weights, that processor i of
// n serves in a deployment of shards shards. Each asynq processor polls
// every queue it serves, one after the other, when it finds no task: so
// the shards are dealt out to the processors rather than all given to
// each. With at least as many processors as shards, each serves one
// shard (processor i shard i mod shards); with fewer, each serves every
// n-th shard, and one processor alone serves them all. A shard's new
// deliveries weigh 6 to its replays' 1, so a big replay cannot starve
// fresh conversions.
func ProcessorQueues(i, n, shards int) map[string]int {
	n, shards = max(n, 1), max(shards, 1)
	if n >= shards {
		k := i % shards
		return map[string]int{wire.Queue(k): 6, wire.ReplayQueue(k): 1}
	}
	out := map[string]int{}
	for k := i % n; k < shards; k += n {
		out[wire.Queue(k)], out[wire.ReplayQueue(k)] = 6, 1
	}
	return out
}

// scaledQueues are the queues of the scaler's server i of n (see
// scaler): the first, which runs with the lead whenever the worker is
// awake, serves every shard as the lead does, so that a light load in
// any shard has two processors; the rest, which run only while the
// worker is busy, share the shards out (ProcessorQueues).
func scaledQueues(i, n, shards int) map[string]int {
	if i == 0 || n <= 1 {
		return ProcessorQueues(0, 1, shards)
	}
	return ProcessorQueues(i-1, n-1, shards)
}

// Worker runs delivery tasks from Redis.
type Worker struct {
	lead    *asynq.Server // always runs; the others run while awake
	scaler  *scaler       // nil with a single processor
	n       int           // processors when awake
	handler *Handler
	clients *guardedClients
	gate    *Gate
	stats   *statsLoop
	lost    *recoverer
	pauses  *pauseWatch
	done    *finishedLog // tasks the handlers returned from
	ops     *opsevent.Server
	rdb     redis.UniversalClient
	pipe    *store.AutoPipeline // the handlers' Redis
	log     *slog.Logger
}

// NewWorker builds a worker; Start runs it.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Redis == nil || cfg.Config == nil {
		return nil, fmt.Errorf("delivery: WorkerConfig needs Redis and Config")
	}
	cfg = cfg.withDefaults()
	c := cfg.Config.Load()
	if c.IntakeOnly {
		return nil, errors.New("delivery: the config was loaded for intake only (no templates or secrets); load it whole to run deliveries")
	}
	clients := newGuardedClients(netguard.Config{UserAgent: "postback/" + version.Version, Resolver: cfg.Resolver}, c)
	events := opsevent.NewEmitter(cfg.Redis, cfg.Config, cfg.Logger)
	if cfg.Isolation.OnOpen == nil {
		cfg.Isolation.OnOpen = circuitOpened(store.New(cfg.Redis), events, cfg.Isolation.WithDefaults().BreakerFailures)
	}
	gate, err := NewGate(cfg.Isolation)
	if err != nil {
		return nil, err
	}
	opsSrv, err := opsevent.NewServer(opsevent.ServerConfig{Redis: cfg.Redis, Config: cfg.Config, Resolver: cfg.Resolver, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	// On a single server the handlers' reads and outcome writes leave
	// together as pipelines, as intake's do; asynq's own commands keep
	// the plain client.
	handlerRedis := cfg.Redis
	var pipe *store.AutoPipeline
	switch rdb := cfg.Redis.(type) {
	case *redis.Client:
		pipe = store.NewAutoPipeline(rdb, store.DefaultFlushers, false)
	case *redis.ClusterClient:
		// A handler's commands are each about one delivery, in one
		// shard: nothing orders them across nodes.
		pipe = store.NewClusterAutoPipeline(rdb, store.DefaultFlushers, false)
	}
	if pipe != nil {
		handlerRedis = pipe.RDB
	}
	pauses := &Pauses{}
	served := c.Redis.Served()
	h := NewHandler(HandlerConfig{
		Config: cfg.Config,
		Pauses: pauses,
		Events: events,
		Store:  store.NewLayout(handlerRedis, c.Redis.Placed(), served),
		Sender: &Sender{guard: clients, live: cfg.Config},
		Gate:   gate,
		Logger: cfg.Logger,
		// A bundle's hand-offs are asynq's own writes: the plain client.
		Queue:       asynq.NewClientFromRedisClient(cfg.Redis),
		Concurrency: cfg.Concurrency,
		Tracer:      cfg.Tracer,
	})
	newServer := func(share int, poll time.Duration, queues map[string]int) *asynq.Server {
		return asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
			Concurrency:              share,
			Queues:                   queues,
			TaskCheckInterval:        poll,
			DelayedTaskCheckInterval: cfg.ScheduleInterval,
			ShutdownTimeout:          cfg.ShutdownTimeout,
			RetryDelayFunc:           retryDelay,
			IsFailure:                isFailure,
			Logger:                   asynqLogger{cfg.Logger},
			LogLevel:                 asynq.WarnLevel,
		})
	}
	finished := &finishedLog{}
	lost := newRecoverer(recovererParams{
		Finished: finished, Store: store.New(cfg.Redis), Queues: wire.Queues(served),
		Interval: cfg.RecoverInterval, Grace: recoverGrace, Logger: cfg.Logger,
	})
	shares := SplitConcurrency(cfg.Concurrency, cfg.Dequeuers)
	var lead *asynq.Server
	var sc *scaler
	if len(shares) == 1 {
		// Nothing to stop when idle: the one processor polls as an awake one.
		lead = newServer(shares[0], cfg.PollInterval, ProcessorQueues(0, 1, served))
	} else {
		lead = newServer(shares[0], cfg.IdlePollInterval, ProcessorQueues(0, 1, served))
		sc = newScaler(scalerParams{
			Redis: cfg.Redis, LeadShare: shares[0], Shares: shares[1:], IdleAfter: cfg.IdleAfter, Hold: lost.inOutage, Logger: cfg.Logger,
			// The first server is the only one awake at a trickle or a
			// moderate rate of bundles: it looks four times as often, so a
			// task waits for a look about as long as with every server up.
			NewServer: func(i, share int) *asynq.Server {
				poll := cfg.PollInterval
				if i == 0 {
					poll = max(cfg.PollInterval/4, time.Millisecond)
				}
				return newServer(share, poll, scaledQueues(i, len(shares)-1, served))
			},
		})
	}
	stats := newStatsLoop(statsLoopParams{
		Redis: cfg.Redis, Live: cfg.Config, Gate: gate, Pauses: pauses, Interval: cfg.StatsInterval, Logger: cfg.Logger,
		Shards: served,
	})
	watch := newPauseWatch(pauseWatchParams{Store: store.New(cfg.Redis), Into: pauses, Interval: cfg.PauseInterval, Logger: cfg.Logger})
	return &Worker{lead: lead, scaler: sc, n: len(shares), handler: h, clients: clients, gate: gate, stats: stats, lost: lost, pauses: watch, done: finished, ops: opsSrv, rdb: cfg.Redis, pipe: pipe, log: cfg.Logger}, nil
}

// Gate returns the worker's partner isolation (rate limits, concurrency
// caps, circuit breakers).
func (w *Worker) Gate() *Gate { return w.gate }

// Dequeuers is how many asynq processors the worker runs.
func (w *Worker) Dequeuers() int { return w.n }

// Awake reports whether the worker runs more processors than its idle
// one (see WorkerConfig.IdleAfter); a worker with one processor is
// always awake.
func (w *Worker) Awake() bool { return w.scaler == nil || w.scaler.awake() }

// Handler returns the worker's task handler.
func (w *Worker) Handler() *Handler { return w.handler }

// Start checks Redis's durability settings (warning when a crash or an
// eviction could lose accepted events), then starts processing and the
// metrics refresher in the background.
func (w *Worker) Start() error {
	w.pauses.start()
	w.warnDurability()
	mux := asynq.NewServeMux()
	mux.Handle(wire.TypeDeliver, w.noteDone(w.handler.ProcessTask))
	mux.Handle(wire.TypeDeliverBundle, w.noteDone(w.handler.ProcessBundle))
	if err := w.lead.Start(mux); err != nil {
		w.pauses.shutdown()
		return fmt.Errorf("start worker: %w", err)
	}
	if err := w.ops.Start(); err != nil {
		w.lead.Shutdown()
		w.pauses.shutdown()
		return err
	}
	if w.scaler != nil {
		w.scaler.start(mux)
	}
	w.stats.start()
	w.lost.start()
	return nil
}

// noteDone notes each task h returns from, for the recoverer.
func (w *Worker) noteDone(h asynq.HandlerFunc) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if w.scaler != nil {
			w.scaler.taskStarted()
			defer w.scaler.taskDone()
		}
		err := h(ctx, t)
		if id, ok := asynq.GetTaskID(ctx); ok {
			w.done.add(taskQueue(ctx), id, time.Now())
		}
		return err
	})
}

// Shutdown stops taking deliveries and waits for those in flight (up to
// ShutdownTimeout; unfinished ones go back to the queue).
func (w *Worker) Shutdown() {
	w.handler.Stop()
	var wg sync.WaitGroup
	wg.Go(w.lead.Shutdown) // at once: each waits up to ShutdownTimeout
	if w.scaler != nil {
		wg.Go(w.scaler.shutdown)
	}
	wg.Go(w.ops.Shutdown)
	wg.Wait()
	w.lost.shutdown()
	w.pauses.shutdown()
	w.stats.shutdown()
	w.clients.closeIdle()
	if w.pipe != nil {
		_ = w.pipe.Close()
	}
}

// warnDurability logs, once at start, each Redis setting that can lose
// accepted events (production Redis needs appendonly yes and
// maxmemory-policy noeviction). Redis that refuses CONFIG (managed
// services often rename it) only gets a reminder.
func (w *Worker) warnDurability() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	warnings, err := checkPersistence(ctx, w.rdb)
	if err != nil {
		w.log.Info("could not read Redis persistence settings; make sure Redis runs with appendonly yes and maxmemory-policy noeviction, or a crash or eviction can lose accepted events",
			"err", err)
		return
	}
	for _, msg := range warnings {
		w.log.Warn(msg)
	}
}

// maxTimeout is the longest partner timeout: the client's own bound; each
// attempt is cut at its partner's timeout by its context.
func maxTimeout(c *config.Config) time.Duration {
	d := c.Delivery.Timeout
	for _, p := range c.Partners {
		d = max(d, p.Timeout)
	}
	return d
}

// retryDelay gives asynq the delay the handler chose (retry.After or
// retry.Defer); anything else is retried after a short pause.
func retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if d, _, ok := retry.DelayOf(err); ok {
		return d
	}
	return time.Duration(min(n+1, 30)) * time.Second
}

// isFailure is false for deferrals, so they spend no attempt.
func isFailure(err error) bool {
	_, deferral, ok := retry.DelayOf(err)
	return !(ok && deferral)
}

// asynqLogger sends asynq's own messages to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), "component", "asynq")
	os.Exit(1) // asynq's Logger contract: Fatal does not return

}
