package opsevent

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/netguard"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/triage"
	"github.com/postbackhq/postback/internal/version"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Redis holds the ops queue. Required.
	Redis redis.UniversalClient
	// Config is the config in force: its ops.webhooks and
	// delivery.allow_private_networks. Required.
	Config *config.Live
	// Concurrency is how many events are sent at once. Default 4.
	Concurrency int
	// PollInterval is how often the idle server looks for events. Default 1s.
	PollInterval time.Duration
	// Resolver overrides DNS for the guarded client (tests).
	Resolver netguard.Resolver
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Server sends the operational events: an asynq server of its own on
// QueueOps, so that webhooks that hang or fail take nothing from the
// postbacks.
type Server struct {
	cfg     ServerConfig
	srv     *asynq.Server
	store   *store.Store
	emitter *Emitter

	mu      sync.Mutex
	clients map[bool]*netguard.Client // by allow_private_networks
}

// NewServer returns a Server; Start runs it.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Redis == nil || cfg.Config == nil {
		return nil, errors.New("opsevent: ServerConfig needs Redis and Config")
	}
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 4)
	cfg.PollInterval = cmp.Or(cfg.PollInterval, time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	s := &Server{cfg: cfg, store: store.NewSharded(cfg.Redis, cfg.Config.Load().Redis.Served()), emitter: NewEmitter(cfg.Redis, cfg.Config, cfg.Logger), clients: map[bool]*netguard.Client{}}
	s.srv = asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   map[string]int{QueueOps: 1},
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: cfg.PollInterval,
		RetryDelayFunc:           backoff,
		Logger:                   quietLogger{cfg.Logger},
		LogLevel:                 asynq.ErrorLevel,
		ShutdownTimeout:          5 * time.Second,
	})
	return s, nil
}

// Start starts sending.
func (s *Server) Start() error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeSend, s.send)
	mux.HandleFunc(TypeGather, s.gather)
	if err := s.srv.Start(mux); err != nil {
		return fmt.Errorf("start ops events: %w", err)
	}
	return nil
}

// Shutdown stops sending; unsent events stay queued.
func (s *Server) Shutdown() { s.srv.Shutdown() }

// backoff is the delay before the n-th retry of an event: 2 s doubling,
// at most 10 min, with up to a quarter of jitter.
func backoff(n int, _ error, _ *asynq.Task) time.Duration {
	d := min(2*time.Second<<min(n, 10), 10*time.Minute)
	return d + time.Duration(rand.Float64()*float64(d)/4)
}

func (s *Server) client(c *config.Config) *netguard.Client {
	allow := c.Delivery.AllowPrivateNetworks
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := s.clients[allow]
	if cl == nil {
		cl = netguard.New(netguard.Config{AllowPrivate: allow, Timeout: 10 * time.Second, Resolver: s.cfg.Resolver,
			MaxResponseBytes: 4 << 10, UserAgent: "postback/" + version.Version})
		s.clients[allow] = cl
	}
	return cl
}

// send posts one event to one webhook: a 2xx is done; anything else is
// retried with backoff.
func (s *Server) send(ctx context.Context, t *asynq.Task) error {
	var pl sendPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(pl.Event, &ev); err != nil || ev.ID == "" {
		return fmt.Errorf("event without an id: %w", asynq.SkipRetry)
	}
	cfg := s.cfg.Config.Load()
	var hook *config.OpsWebhook
	for i, w := range cfg.Ops.Webhooks {
		if HookKey(w.URL) == pl.Hook {
			hook = &cfg.Ops.Webhooks[i]
		}
	}
	if hook == nil {
		return nil // the webhook left the config
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(pl.Event))
	if err != nil {
		return fmt.Errorf("ops webhook %s: %w", triage.RedactURL(hook.URL), asynq.SkipRetry)
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(pl.Event))
	hook.Signer.Header(req.Header, ev.ID, time.Now(), pl.Event)
	resp, err := s.client(cfg).Do(ctx, req)
	if err != nil {
		return fmt.Errorf("ops webhook %s: %w", triage.RedactURL(hook.URL), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("ops webhook %s: HTTP %d", triage.RedactURL(hook.URL), resp.StatusCode)
	}
	return nil
}

// gather makes one dlq.dead_lettered event of a partner's dead letters of
// one minute, from the triage index: the count, the reasons and the
// revenue at risk of those still dead.
func (s *Server) gather(ctx context.Context, t *asynq.Task) error {
	var pl gatherPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	from := time.UnixMilli(pl.From)
	to := from.Add(dlqWindow)
	set, _, err := s.store.TriageReadAll(ctx, pl.Partner, from)
	if err != nil {
		return err
	}
	d := Data{Reasons: map[string]int{}, From: at(from), To: at(to)}
	var sums triage.Sums
	for _, dead := range set.Dead {
		if !dead.At.Before(to) {
			break // oldest first
		}
		d.Count++
		e, ok := set.Entries[dead.ID]
		if !ok {
			d.Reasons["unknown"]++
			continue
		}
		d.Reasons[cmp.Or(set.Groups[e.Group].Reason, "unknown")]++
		_ = sums.Add(e.Amount, e.Currency)
	}
	if d.Count == 0 {
		return nil // replayed or purged already
	}
	d.RevenueAtRisk = sums.Map()
	return s.emitter.Emit(ctx, New(TypeDeadLettered, pl.Partner, ms(from), to, d))
}

// quietLogger sends asynq's messages to slog at debug level, but errors.
type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Debug(args ...any) { q.l.Debug(fmt.Sprint(args...), "component", "asynq-ops") }
func (q quietLogger) Info(args ...any)  { q.l.Debug(fmt.Sprint(args...), "component", "asynq-ops") }
func (q quietLogger) Warn(args ...any)  { q.l.Debug(fmt.Sprint(args...), "component", "asynq-ops") }
func (q quietLogger) Error(args ...any) { q.l.Warn(fmt.Sprint(args...), "component", "asynq-ops") }
func (q quietLogger) Fatal(args ...any) { q.l.Error(fmt.Sprint(args...), "component", "asynq-ops") }
