package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/httpapi"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/tracing"
)

// runtime is what serve, api and worker share: logger, config, Redis.
type runtime struct {
	log     *slog.Logger
	live    *config.Live
	rdb     redis.UniversalClient
	mini    *miniredis.Miniredis
	cfgPath string
	api     bool // the process runs the API: api.wait_replicas applies to it
	// tracer is nil unless tracing is on (--otel, OTEL_EXPORTER_OTLP_*);
	// stopTracing flushes its spans.
	tracer      *tracing.Tracer
	stopTracing func(context.Context) error
}

func (rt *runtime) close() {
	if rt.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := rt.stopTracing(ctx); err != nil {
			rt.log.Warn("tracing: spans not all exported at exit", "err", err)
		}
		cancel()
	}
	_ = rt.rdb.Close()
	if rt.mini != nil {
		rt.mini.Close()
	}
}

// setup loads the config and connects to Redis (or starts the embedded
// one), failing with one clear line when either is wrong.
func setup(c *cli.Context, embedded bool) (*runtime, error) {
	log, err := newLogger(c, c.App.ErrWriter)
	if err != nil {
		return nil, err
	}
	// go-redis logs every failed dial itself; the one clear error below
	// says it all, so its messages go to our log at debug level.
	redis.SetLogger(redisLogger{log})
	rt := &runtime{log: log, cfgPath: c.String("config")}
	cfg, err := config.Load(rt.cfgPath)
	if err != nil {
		return nil, err
	}
	rt.live = config.NewLive(cfg)
	redisURL := c.String("redis-url")
	if embedded && cfg.API.WaitReplicas > 0 {
		return nil, usageError("%s", embeddedWaitReplicas(cfg))
	}
	if embedded {
		rt.mini, err = startEmbedded(c.String("embedded-redis-addr"))
		if err != nil {
			return nil, err
		}
		redisURL = "redis://" + rt.mini.Addr() + "/0"
		log.Warn("running on the embedded in-memory Redis: nothing is durable, every queued postback is lost when this process stops; use --redis-url for production",
			"ops", "postback --redis-url "+redisURL+" dlq list | stats | deliveries show ID")
	}
	rt.rdb, err = store.OpenRedis(redisURL)
	if err != nil {
		return nil, err
	}
	if rt.tracer, rt.stopTracing, err = startTracing(c, log); err != nil {
		rt.close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, 3*time.Second)
	defer cancel()
	if err := rt.rdb.Ping(ctx).Err(); err != nil {
		rt.close()
		return nil, fmt.Errorf("cannot reach Redis at %s: %v", redactURL(redisURL), err)
	}
	return rt, nil
}

// redisLogger sends go-redis's own messages to slog at debug level.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}

// startEmbedded starts the in-process Redis on addr, so that the ops
// commands (whose default --redis-url is 127.0.0.1:6379) reach it from
// another shell; when addr is taken it falls back to a free port.
func startEmbedded(addr string) (*miniredis.Miniredis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err == nil {
		return m, nil
	}
	m = miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded Redis: %w", err)
	}
	return m, nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// reloadOnHUP reloads the config on SIGHUP; a config that fails to load is
// refused with its problems logged, and the running one stays.
func (rt *runtime) reloadOnHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = rt.reload()
			}
		}
	}()
}

// reload loads the config file again and puts it in force; a file that
// fails to load is refused, its problems logged, and the running config
// stays.
func (rt *runtime) reload() error {
	cfg, err := config.Load(rt.cfgPath)
	if err == nil {
		err = rt.fits(cfg)
	}
	if err != nil {
		rt.log.Error("config reload refused; the running config stays", "file", rt.cfgPath, "problems", err.Error())
		return err
	}
	rt.live.Store(cfg)
	rt.log.Info("config reloaded", "file", rt.cfgPath, "partners", len(cfg.Partners))
	return nil
}

// fits reports why cfg cannot run on this process's Redis, as start-up
// would refuse it, or nil. api.wait_replicas concerns only a process that
// runs the API (a worker alone never waits for replicas).
func (rt *runtime) fits(cfg *config.Config) error {
	if running := rt.live.Load(); running != nil {
		if err := config.CheckShardsChange(running, cfg); err != nil {
			return err
		}
	}
	if rt.mini != nil && cfg.API.WaitReplicas > 0 {
		return errors.New(embeddedWaitReplicas(cfg))
	}
	if rt.api && rt.rdb != nil {
		return intake.CheckWaitReplicas(rt.rdb, cfg)
	}
	return nil
}

func embeddedWaitReplicas(cfg *config.Config) string {
	return fmt.Sprintf("api.wait_replicas is %d, but the embedded Redis has no replicas: every event would be answered 503; set it to 0 or use --redis-url", cfg.API.WaitReplicas)
}

var (
	listenFlag      = &cli.StringFlag{Name: "listen", Value: ":8080", EnvVars: []string{"POSTBACK_LISTEN"}, Usage: "API listen address"}
	concurrencyFlag = &cli.IntFlag{Name: "concurrency", Value: 100, EnvVars: []string{"POSTBACK_CONCURRENCY"}, Usage: "deliveries in flight per process"}
	dequeuersFlag   = &cli.IntFlag{Name: "dequeuers", EnvVars: []string{"POSTBACK_DEQUEUERS"}, Usage: "asynq processors sharing --concurrency, each taking tasks in its own loop; an idle worker runs one (default: concurrency/6, 2 to 16)"}
	noAuthFlag      = &cli.BoolFlag{Name: "insecure-no-auth", EnvVars: []string{"POSTBACK_INSECURE_NO_AUTH"}, Usage: "serve the API without API keys (local use only)"}
	embeddedFlag    = &cli.BoolFlag{Name: "embedded-redis", Usage: "run on an in-process, in-memory Redis (nothing is durable)"}
	embeddedAddr    = &cli.StringFlag{Name: "embedded-redis-addr", Value: "127.0.0.1:6379", Usage: "where the embedded Redis listens (a free port if taken)"}
	// metricsListenFlag gives a worker without the API its own /metrics.
	metricsListenFlag = &cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"POSTBACK_METRICS_LISTEN"},
		Usage: "serve Prometheus /metrics on this address, like :9464 (off when empty)"}
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the enqueue API and the workers in one process",
		Flags: []cli.Flag{listenFlag, concurrencyFlag, dequeuersFlag, noAuthFlag, embeddedFlag, embeddedAddr},
		Action: func(c *cli.Context) error {
			return runProcess(c, true, true, c.Bool("embedded-redis"))
		},
	}
}

func apiCommand() *cli.Command {
	return &cli.Command{
		Name:  "api",
		Usage: "run the enqueue API alone",
		Flags: []cli.Flag{listenFlag, noAuthFlag},
		Action: func(c *cli.Context) error {
			return runProcess(c, true, false, false)
		},
	}
}

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run the delivery workers alone",
		Flags: []cli.Flag{concurrencyFlag, dequeuersFlag, metricsListenFlag},
		Action: func(c *cli.Context) error {
			return runProcess(c, false, true, false)
		},
	}
}

// runProcess runs the API and/or the workers until SIGINT or SIGTERM.
func runProcess(c *cli.Context, withAPI, withWorker, embedded bool) error {
	if n := c.Int("dequeuers"); withWorker && n < 0 {
		return usageError("--dequeuers %d: want a positive number, or 0 for the default", n)
	}
	rt, err := setup(c, embedded)
	if err != nil {
		return err
	}
	defer rt.close()
	rt.api = withAPI
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rt.reloadOnHUP(ctx)

	var worker *delivery.Worker
	if withWorker {
		worker, err = delivery.NewWorker(delivery.WorkerConfig{
			Redis: rt.rdb, Config: rt.live, Concurrency: c.Int("concurrency"), Dequeuers: c.Int("dequeuers"), Logger: rt.log,
			Tracer: rt.tracer,
		})
		if err != nil {
			return err
		}
		if err := worker.Start(); err != nil {
			return err
		}
		rt.log.Info("worker started", "concurrency", c.Int("concurrency"), "dequeuers", worker.Dequeuers(), "partners", len(rt.live.Load().Partners))
	}

	var api *httpapi.Server
	var metricsSrv *http.Server
	errc := make(chan error, 2)
	if addr := c.String("metrics-listen"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if worker != nil {
				worker.Shutdown()
			}
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- metricsSrv.Serve(ln) }()
		rt.log.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	}
	if withAPI {
		client, err := intake.NewClient(intake.ClientConfig{Redis: rt.rdb, Config: rt.live, Tracer: rt.tracer})
		if err != nil {
			return err
		}
		api, err = httpapi.New(httpapi.Config{
			Client: client, Config: rt.live, Redis: rt.rdb, InsecureNoAuth: c.Bool("insecure-no-auth"), Logger: rt.log,
		})
		if err != nil {
			if worker != nil {
				worker.Shutdown()
			}
			return err
		}
		ln, err := net.Listen("tcp", c.String("listen"))
		if err != nil {
			if worker != nil {
				worker.Shutdown()
			}
			return fmt.Errorf("listen on %s: %w", c.String("listen"), err)
		}
		go func() { errc <- api.Serve(ln) }()
		rt.log.Info("API listening", "addr", ln.Addr().String())
	}

	select {
	case <-ctx.Done():
		rt.log.Info("shutting down")
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if api != nil {
		_ = api.Shutdown(sctx)
	}
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(sctx)
	}
	if worker != nil {
		worker.Shutdown()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
