package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/httpapi"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/tracing"
)

// Config configures Run.
type Config struct {
	// Redis is where every phase runs. Its database must be empty: bench
	// flushes it between phases and at the end. Required.
	Redis redis.UniversalClient
	// RedisName names that Redis in the report (a redacted URL).
	RedisName string
	// Duration is how long each timed phase measures. Default 10s.
	Duration time.Duration
	// Concurrency is the worker's concurrency and the asynq no-op server's.
	// Default 100.
	Concurrency int
	// Dequeuers is the worker's number of asynq processors (see
	// delivery.WorkerConfig). Default delivery.DefaultDequeuers.
	Dequeuers int
	// BundleSize is the client's (intake.ClientConfig.BundleSize):
	// how many deliveries of a batch to one partner share a task. Default
	// intake.DefaultBundleSize; 1 gives each its own.
	BundleSize int
	// NoGroupCommit stores each single event on its own
	// (intake.ClientConfig.NoGroupCommit), to measure what sharing the
	// writes of concurrent single events buys.
	NoGroupCommit bool
	// Clients is how many producers send at once, in every phase. Default 32.
	Clients int
	// BatchSize is the number of events per batch request. Default 100.
	BatchSize int
	// Rounds is how many times the timed phases run, alternating with
	// their baselines; rates and ratios are the medians over the rounds.
	// Default 1.
	Rounds int
	// E2EIntake is how the end-to-end phase's producers send events:
	// "batch" (BatchSize a request, the default) or "single" (one event a
	// POST). Intake speed has phases of its own; batches keep the
	// producers' share of a small machine's CPU close to the raw asynq
	// baseline's, whose producers call Client.Enqueue in-process. The
	// latency phase always posts events one at a time.
	E2EIntake string
	// Lifecycle lists the partner's lifecycle rules to measure with
	// (LifecycleRules): each costs Redis work per delivery, which the
	// end-to-end and memory figures then include.
	Lifecycle []string
	// MemoryDeliveries is how many deliveries (and raw asynq tasks) the
	// memory phase stores. Default 5000.
	MemoryDeliveries int
	// Backlog caps how far producers may run ahead of the consumers in the
	// throughput phases, so that the phase measures a steady state and
	// drains quickly. Default 20 × Concurrency.
	Backlog int
	// PollInterval is the worker's (and the asynq no-op server's) idle poll
	// interval. Default 20ms, the worker's own default.
	PollInterval time.Duration
	// APIURL is a running `postback api` to send events to instead of the
	// in-process API. It must use the same Redis and a config with the
	// bench partner (see PartnerYAML) pointed at PartnerListen.
	APIURL string
	// APIKey is the bearer key for APIURL.
	APIKey string
	// PartnerListen is the loopback partner's address. Default
	// 127.0.0.1:0 (a free port).
	PartnerListen string
	// Logger receives the API's and the worker's own logs. Default: none.
	Logger *slog.Logger
	// Progress gets one line as each phase starts. Default: none.
	Progress io.Writer
	// Phases names the phases to run (see PhaseNames); the figures of the
	// others stay zero. Default all.
	Phases []string
	// IdleWindow is how long the idle phase measures each side with no
	// traffic. Default 10s, whatever Duration is.
	IdleWindow time.Duration
	// IdleTrials is how many single events the idle phase sends, each
	// to a worker that has gone idle, for the first-event latency.
	// Default 50.
	IdleTrials int
	// Tracing runs the API, the Go client and the worker with tracing on:
	// every span goes through the OpenTelemetry SDK's batch processor, as
	// it would to an OTLP collector, to an exporter that counts and drops
	// it. Compare with a run without it for what tracing costs. Default
	// off.
	Tracing bool
	// Rate is the fixed-rate phases' (asynq-rate, e2e-rate) events a
	// second, sent open loop. Default DefaultRate.
	Rate float64
	// RateIntake is how e2e-rate sends each event: IntakeSingle (one a
	// POST, the default) or IntakeClient (intake.Client.Enqueue).
	RateIntake string

	// Shards is the config's redis.shards: how many hash tags, each with
	// its queue, the deliveries spread over. Default 1.
	Shards int
}

func (c Config) withDefaults() Config {
	c.Duration = cmp.Or(c.Duration, 10*time.Second)
	c.Concurrency = cmp.Or(c.Concurrency, 100)
	if c.Dequeuers <= 0 {
		c.Dequeuers = delivery.DefaultDequeuers(c.Concurrency)
	}
	c.Dequeuers = min(c.Dequeuers, c.Concurrency)
	c.BundleSize = cmp.Or(c.BundleSize, intake.DefaultBundleSize)
	c.Clients = cmp.Or(c.Clients, 32)
	c.BatchSize = cmp.Or(c.BatchSize, 100)
	c.E2EIntake = cmp.Or(c.E2EIntake, IntakeBatch)
	c.Rounds = cmp.Or(c.Rounds, 1)
	c.MemoryDeliveries = cmp.Or(c.MemoryDeliveries, 5000)
	c.Backlog = cmp.Or(c.Backlog, 20*c.Concurrency)
	c.PollInterval = cmp.Or(c.PollInterval, 20*time.Millisecond)
	c.IdleWindow = cmp.Or(c.IdleWindow, 10*time.Second)
	c.IdleTrials = cmp.Or(c.IdleTrials, 50)
	c.PartnerListen = cmp.Or(c.PartnerListen, "127.0.0.1:0")
	c.Rate = cmp.Or(c.Rate, DefaultRate)
	c.RateIntake = cmp.Or(c.RateIntake, IntakeSingle)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Redis == nil:
		return errors.New("bench: Config needs Redis")
	case c.Duration < 100*time.Millisecond:
		return fmt.Errorf("bench: duration %v is too short to measure anything", c.Duration)
	case c.Rounds < 1 || c.Rounds > 20:
		return fmt.Errorf("bench: rounds %d: want 1 to 20", c.Rounds)
	case c.Concurrency < 1 || c.Clients < 1 || c.BatchSize < 1 || c.MemoryDeliveries < 10:
		return errors.New("bench: concurrency, clients and batch size must be positive, memory deliveries at least 10")
	case c.BatchSize > 1000:
		return errors.New("bench: batch size is at most 1000 (the API's limit)")
	case c.E2EIntake != IntakeBatch && c.E2EIntake != IntakeSingle:
		return fmt.Errorf("bench: e2e intake %q: want %s or %s", c.E2EIntake, IntakeBatch, IntakeSingle)
	case c.Rate < 0 || c.Rate > maxRate || c.runsRate() && c.Rate*c.Duration.Seconds() < 2:
		return fmt.Errorf("bench: rate %g/s: want at most %d/s, and at least 2 events a phase (%v)", c.Rate, maxRate, c.Duration)
	case c.RateIntake != IntakeSingle && c.RateIntake != IntakeClient:
		return fmt.Errorf("bench: rate intake %q: want %s or %s", c.RateIntake, IntakeSingle, IntakeClient)
	}
	for _, rule := range c.Lifecycle {
		if _, ok := LifecycleRules[rule]; !ok {
			return fmt.Errorf("bench: unknown lifecycle rule %q; rules are order_by, delay and dedup", rule)
		}
	}
	for _, name := range c.Phases {
		if !slices.Contains(PhaseNames, name) {
			return fmt.Errorf("bench: unknown phase %q; phases are %s", name, strings.Join(PhaseNames, ", "))
		}
	}
	return nil
}

// The end-to-end phase's intakes (Config.E2EIntake).
const (
	IntakeBatch  = "batch"
	IntakeSingle = "single"
)

// PhaseNames are the phases of a run, in the order they run.
var PhaseNames = []string{"memory", "enqueue-asynq", "enqueue-client", "enqueue-single", "enqueue-batch", "asynq-noop", "asynq-http", "asynq-noop-dequeuers", "e2e", "asynq-rate", "e2e-rate", "idle"}

// ErrNotEmpty is returned when the Redis database already holds keys.
var ErrNotEmpty = errors.New("the Redis database is not empty; bench flushes it between phases, so give it an empty one (for example redis://host:6379/15)")

// apiKey is the in-process API's key.
const apiKey = "bench-key-0123456789abcdef"

// LifecycleRules are the partner keys Config.Lifecycle may add. Every
// event of the bench has its own click and transaction: each sequence
// holds one delivery and each dedup key is new, so what is measured is
// the rules' cost on every delivery, not waits or skips.
var LifecycleRules = map[string]string{
	"order_by": "    order_by: click_id\n",
	"delay":    "    delay: 1s\n",
	"dedup":    "    dedup: {key: \"{click_id}:{event}:{event_id}\", window: 1h}\n",
}

// PartnerYAML is the config of the partner bench delivers to, with its
// loopback address and the lifecycle rules to measure with: what a
// `postback api` given with APIURL must route to.
func PartnerYAML(partnerAddr string, lifecycle ...string) string {
	var rules strings.Builder
	for _, r := range lifecycle {
		rules.WriteString(LifecycleRules[r])
	}
	return `  - id: bench
    events: [purchase]
    match: attributed
    require: [click_id]
    method: GET
    url: "http://` + partnerAddr + `/pb?e={event_id}&click_id={click_id}&goal={event|map:install=1,purchase=2}&sum={revenue|default:0}&cur={currency}&ts={timestamp|unix}&idfa={idfa}&dlv={delivery_id}"
    retry: {max_attempts: 10, max_age: 1h, initial_interval: 1s, max_interval: 1m, multiplier: 2}
` + rules.String()
}

func benchYAML(partnerAddr string, lifecycle []string) string {
	return `api:
  keys: ["` + apiKey + `"]
  dedup_window: 1h
delivery:
  timeout: 5s
  allow_private_networks: true
partners:
` + PartnerYAML(partnerAddr, lifecycle...)
}

// run holds one run's parts.
type run struct {
	cfg     Config
	live    *config.Live
	client  *intake.Client
	partner *partner
	apiURL  string
	apiKey  string
	load    *loadClient     // the producers' HTTP client
	payload []byte          // a real delivery task's payload, for the raw asynq baselines
	tracer  *tracing.Tracer // Config.Tracing; nil when off
	prefix  string          // makes event ids unique across runs
	// lastRound is set during the last round, the one that also measures
	// latency.
	lastRound bool
}

// Run measures and returns the result. It stops early, with an error, when
// ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n, err := dbSize(ctx, cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("bench: reach Redis: %w", err)
	}
	if n > 0 {
		return nil, fmt.Errorf("bench: %w (it holds %d keys)", ErrNotEmpty, n)
	}
	defer func() { _ = flush(context.Background(), cfg.Redis) }()

	p, err := startPartner(cfg.PartnerListen)
	if err != nil {
		return nil, err
	}
	defer p.close()
	parsed, err := config.Parse("bench.yaml", []byte(benchYAML(p.addr, cfg.Lifecycle)+shardsYAML(cfg.Shards)), func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, fmt.Errorf("bench: config: %w", err)
	}
	r := &run{
		cfg: cfg, live: config.NewLive(parsed), partner: p,
		apiURL: cfg.APIURL, apiKey: cmp.Or(cfg.APIKey, apiKey),
		prefix: "b" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "-",
	}
	spans, stopTracing := r.startTracing()
	defer stopTracing()
	r.client, err = intake.NewClient(intake.ClientConfig{Redis: cfg.Redis, Config: r.live, BundleSize: cfg.BundleSize, NoGroupCommit: cfg.NoGroupCommit, Tracer: r.tracer})
	if err != nil {
		return nil, err
	}
	defer r.client.Close()
	if r.apiURL == "" {
		stop, err := r.startAPI()
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	if r.load, err = newLoadClient(r.apiURL, r.apiKey, 30*time.Second, 2*cfg.Clients); err != nil {
		return nil, err
	}
	defer r.load.close()

	res := &Result{
		Redis: cfg.RedisName, RedisVersion: serverVersion(ctx, cfg.Redis),
		DurationS: cfg.Duration.Seconds(), Concurrency: cfg.Concurrency, Clients: cfg.Clients,
		Rounds: cfg.Rounds, BatchSize: cfg.BatchSize, E2EIntake: cfg.E2EIntake, Lifecycle: cfg.Lifecycle, Dequeuers: cfg.Dequeuers, BundleSize: cfg.BundleSize, PollIntervalMS: float64(cfg.PollInterval) / float64(time.Millisecond),
		Tracing: cfg.Tracing,
	}
	phases := []struct {
		id, name string
		fn       func(context.Context, *Result) error
	}{
		{"memory", "memory per pending delivery", r.memory},
		{"enqueue-asynq", "enqueue: raw asynq", r.enqueueAsynq},
		{"enqueue-client", "enqueue: Go client", r.enqueueClient},
		{"enqueue-single", "enqueue: HTTP API, one event a request", r.enqueueSingle},
		{"enqueue-batch", "enqueue: HTTP API, batches", r.enqueueBatch},
		{"asynq-noop", "throughput: raw asynq no-op", r.asynqNoop},
		{"asynq-http", "throughput: raw asynq, each task one GET to the partner", r.asynqHTTP},
		{"asynq-noop-dequeuers", "throughput: raw asynq no-op, as many servers as the worker's processors", r.asynqNoopSameDequeuers},
		{"e2e", "throughput: end to end, then latency at half of it", r.endToEnd},
		{"asynq-rate", "fixed rate: raw asynq, each task one GET to the partner", r.asynqRate},
		{"e2e-rate", "fixed rate: end to end", r.e2eRate},
		{"idle", "idle: CPU and Redis commands with no traffic, then the first event after idle", r.idle},
	}
	if len(cfg.Phases) > 0 && !slices.Contains(cfg.Phases, "memory") {
		// The baselines carry a real delivery's payload, which the memory
		// phase reads back; without it, read one back here.
		if err := r.samplePayload(ctx, res); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	// Each round runs every timed phase once, each baseline just before
	// what it is compared with, so that a machine whose speed drifts (a
	// shared VM) affects both sides of a ratio alike. The memory phase
	// runs in the first round, the latency phase in the last.
	rounds := make([]*Result, 0, cfg.Rounds)
	for round := range cfg.Rounds {
		rr := *res
		r.lastRound = round == cfg.Rounds-1
		for _, ph := range phases {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if len(cfg.Phases) > 0 && !slices.Contains(cfg.Phases, ph.id) || (ph.id == "memory" || ph.id == "idle") && round > 0 {
				continue
			}
			if cfg.Rounds > 1 {
				fmt.Fprintf(cfg.Progress, "bench: round %d/%d: %s\n", round+1, cfg.Rounds, ph.name)
			} else {
				fmt.Fprintf(cfg.Progress, "bench: %s\n", ph.name)
			}
			if err := flush(ctx, cfg.Redis); err != nil {
				return nil, fmt.Errorf("bench: flush: %w", err)
			}
			p.reset()
			if err := ph.fn(ctx, &rr); err != nil {
				return nil, fmt.Errorf("bench: %s: %w", ph.name, err)
			}
		}
		rr.ratios()
		rounds = append(rounds, &rr)
		if round == 0 { // what only the first round measures
			*res = rr
		}
	}
	res.combine(rounds)
	res.WorkerRSSMB = rssMB()
	res.Spans = spans()
	return res, nil
}

// startAPI serves the HTTP API on a loopback port.
func (r *run) startAPI() (stop func(), err error) {
	api, err := httpapi.New(httpapi.Config{Client: r.client, Config: r.live, Redis: r.cfg.Redis, Logger: r.cfg.Logger})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: API listen: %w", err)
	}
	go func() { _ = api.Serve(ln) }() // as `postback api` serves it
	r.apiURL = "http://" + ln.Addr().String()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = api.Shutdown(ctx)
	}, nil
}

// rssMB is this process's resident set size (VmRSS), in MiB.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
