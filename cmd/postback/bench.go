package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/bench"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/store"
)

// benchCommand measures the whole pipeline against the Redis of
// --redis-url, with raw asynq baselines from the same run.
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure throughput, latency and Redis memory end to end, against raw asynq in the same run",
		Description: "Starts the HTTP API, a worker and a loopback partner in this process, drives events\n" +
			"through all of them on the Redis of --redis-url, and measures the same things with raw\n" +
			"asynq (enqueue + no-op handler, same Redis, payload and concurrency), so every figure is\n" +
			"also a ratio. The Redis database must be empty: bench flushes it between phases and at\n" +
			"the end. Each timed phase lasts --duration; the whole run about 9× that per round.\n" +
			"The fixed-rate phases (asynq-rate, e2e-rate) send --rate events/s open loop, each at its\n" +
			"planned time however long the earlier ones take, and time each from that planned time.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "length of each timed phase"},
			&cli.IntFlag{Name: "rounds", Value: 1, Usage: "run the timed phases this many times, each next to its baseline, and report medians (a shared machine's speed drifts)"},
			&cli.IntFlag{Name: "concurrency", Value: 100, Usage: "worker concurrency (the asynq baseline's too)"},
			&cli.IntFlag{Name: "dequeuers", Usage: "the worker's asynq processors (default: concurrency/6, 2 to 16); raw asynq is also measured with as many servers"},
			&cli.IntFlag{Name: "bundle-size", Value: intake.DefaultBundleSize, Usage: "deliveries of a batch to one partner that share an asynq task (1: a task each)"},
			&cli.BoolFlag{Name: "no-group-commit", Usage: "store each single event on its own, not with the concurrent ones that arrive meanwhile (to measure what the group commit buys)"},
			&cli.IntFlag{Name: "clients", Value: 32, Usage: "producers sending at once"},
			&cli.IntFlag{Name: "batch-size", Value: 100, Usage: "events per batch request"},
			&cli.StringFlag{Name: "e2e-intake", Value: bench.IntakeBatch, Usage: "how the end-to-end phase sends events: batch (--batch-size a request) or single (one a POST)"},
			&cli.StringSliceFlag{Name: "lifecycle", Usage: "give the bench partner these lifecycle rules, to measure their cost (repeatable): order_by, delay, dedup"},
			&cli.IntFlag{Name: "shards", Value: 1, Usage: "redis.shards of the bench config: hash tags (and queues) the deliveries spread over, for Redis Cluster"},
			&cli.IntFlag{Name: "memory-deliveries", Value: 5000, Usage: "deliveries stored to measure Redis bytes per pending delivery"},
			&cli.StringFlag{Name: "api-url", Usage: "send events to this running `postback api` (same Redis; its config needs the bench partner, see --partner-listen) instead of an in-process API"},
			&cli.StringFlag{Name: "api-key", EnvVars: []string{"POSTBACK_API_KEY"}, Usage: "bearer key for --api-url"},
			&cli.StringFlag{Name: "partner-listen", Value: "127.0.0.1:0", Usage: "address of the loopback partner"},
			&cli.BoolFlag{Name: "embedded-redis", Usage: "run on an in-process miniredis (the figures then say little about a real Redis)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"},
			&cli.StringFlag{Name: "json-file", Usage: "also write the result as JSON to this file"},
			&cli.StringSliceFlag{Name: "phase", Usage: "run only this phase (repeatable): " + strings.Join(bench.PhaseNames, ", ")},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the whole run (API, worker, partner and load) to this file"},
			&cli.Float64Flag{Name: "rate", Value: bench.DefaultRate, Usage: "events/s of the fixed-rate phases (asynq-rate, e2e-rate)"},
			&cli.StringFlag{Name: "rate-intake", Value: bench.IntakeSingle, Usage: "how e2e-rate sends each event: single (one a POST) or client (the Go client, as raw asynq's Client.Enqueue)"},
			&cli.BoolFlag{Name: "tracing", Usage: "trace every event and attempt (OpenTelemetry SDK, batch processor, spans counted and dropped): compare with a run without it"},
		},
		Action: func(c *cli.Context) error {
			format := c.String("output")
			if format != "table" && format != "json" {
				return usageError("--output %q: want table or json", format)
			}
			if c.String("api-url") != "" && c.String("partner-listen") == "127.0.0.1:0" {
				return usageError("--api-url needs --partner-listen with a fixed port, routed to by that API's config:\n%s",
					bench.PartnerYAML("127.0.0.1:PORT", c.StringSlice("lifecycle")...))
			}
			log, err := newLogger(c, c.App.ErrWriter)
			if err != nil {
				return err
			}
			// The worker logs every delivery at info; at bench rates that
			// would measure the terminal. Keep warnings and errors.
			log = slog.New(minLevel{log.Handler(), slog.LevelWarn})
			redisURL := c.String("redis-url")
			if c.Bool("embedded-redis") {
				mr, err := miniredis.Run()
				if err != nil {
					return fmt.Errorf("start embedded Redis: %w", err)
				}
				defer mr.Close()
				redisURL = "redis://" + mr.Addr() + "/0"
				fmt.Fprintln(c.App.ErrWriter, "bench: WARNING: on the embedded miniredis the figures say little about postback on a real Redis; use --redis-url")
			}
			rdb, err := store.OpenRedis(redisURL)
			if err != nil {
				return err
			}
			defer rdb.Close()
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			if path := c.String("cpuprofile"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			res, err := bench.Run(ctx, bench.Config{
				Redis: rdb, RedisName: redactURL(redisURL),
				Duration: c.Duration("duration"), Rounds: c.Int("rounds"), Concurrency: c.Int("concurrency"), Dequeuers: c.Int("dequeuers"), BundleSize: c.Int("bundle-size"), NoGroupCommit: c.Bool("no-group-commit"), Clients: c.Int("clients"),
				BatchSize: c.Int("batch-size"), E2EIntake: c.String("e2e-intake"), Lifecycle: c.StringSlice("lifecycle"), MemoryDeliveries: c.Int("memory-deliveries"),
				APIURL: c.String("api-url"), APIKey: c.String("api-key"), PartnerListen: c.String("partner-listen"),
				Logger: log, Progress: c.App.ErrWriter, Phases: c.StringSlice("phase"), Tracing: c.Bool("tracing"),
				Rate: c.Float64("rate"), RateIntake: c.String("rate-intake"),
				Shards: c.Int("shards"),
			})
			if err != nil {
				return err
			}
			if f := c.String("json-file"); f != "" {
				if err := writeJSONFile(f, res); err != nil {
					return err
				}
			}
			if format == "json" {
				return res.WriteJSON(c.App.Writer)
			}
			return res.WriteTable(c.App.Writer)
		},
	}
}

// minLevel drops records below level, whatever --log-level says.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.level && m.Handler.Enabled(ctx, l)
}

func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(a), m.level}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{m.Handler.WithGroup(name), m.level}
}

func writeJSONFile(path string, res *bench.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.WriteJSON(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
