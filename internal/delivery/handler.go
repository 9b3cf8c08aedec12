package delivery

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/opsevent"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/wire"
)

// Handler processes delivery tasks: it reads the partner's current config,
// checks consent and requirements, renders and sends the request, and
// records the attempt; then the delivery is delivered, retried later
// (through asynq, with the delay from retry) or dead-lettered.
type Handler struct {
	live   *config.Live
	store  *store.Store
	sender *Sender
	gate   *Gate // nil: no partner isolation
	pauses *Pauses
	events *opsevent.Emitter // nil: no operational events
	log    *slog.Logger
	now    func() time.Time
	rnd    func() float64
	queue  *asynq.Client   // where bundles hand deliveries off to
	slots  chan struct{}   // nil: no cap of its own
	tracer *tracing.Tracer // nil: no spans

	stopping chan struct{} // closed by Stop: start no more deliveries
	stopOnce sync.Once

	beforeBundled func(*wire.Payload) // tests: runs before a bundled delivery
}

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	Config *config.Live
	Store  *store.Store
	Sender *Sender
	// Gate applies each partner's rate limit, concurrency cap and circuit
	// breaker before a send (see Gate). Default none.
	Gate *Gate
	// Pauses says which partners are paused: their deliveries are held,
	// and max_age leaves out the time they were paused. Default none.
	Pauses *Pauses
	// Events receives the partner's operational events (failing,
	// recovered, auto-paused, dead letters). Default none.
	Events *opsevent.Emitter
	// Logger gets one line per attempt; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand draws jitter in [0,1); default math/rand/v2.
	Rand func() float64
	// Queue is where a bundle hands the deliveries that need another run
	// to their own tasks (see TypeDeliverBundle). Required for bundles.
	Queue *asynq.Client
	// Concurrency caps the deliveries this handler runs at once, bundled
	// or not. Default 0: only asynq's concurrency caps the tasks.
	Concurrency int
	// Tracer makes a span per attempt, linked to the span that enqueued
	// the delivery. Default nil: no tracing.
	Tracer *tracing.Tracer
}

// NewHandler returns a Handler.
func NewHandler(cfg HandlerConfig) *Handler {
	h := &Handler{live: cfg.Config, store: cfg.Store, sender: cfg.Sender, gate: cfg.Gate, pauses: cfg.Pauses, events: cfg.Events, log: cfg.Logger, now: cfg.Now, rnd: cfg.Rand, queue: cfg.Queue, tracer: cfg.Tracer}
	if cfg.Concurrency > 0 {
		h.slots = make(chan struct{}, cfg.Concurrency)
	}
	h.stopping = make(chan struct{})
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.rnd == nil {
		h.rnd = rand.Float64
	}
	return h
}

// ProcessTask implements asynq.Handler.
// A bundle's task goes to ProcessBundle, so that a Handler used on its
// own (not through Worker's ServeMux) runs both.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	if t.Type() == wire.TypeDeliverBundle {
		return h.ProcessBundle(ctx, t)
	}
	pl, err := wire.DecodePayload(t.Payload())
	if err != nil {
		return undecodable(err)
	}
	cfg := h.live.Load()
	startBy, cancel := startDeadline(ctx, cfg.Partner(pl.Partner).AttemptTimeout())
	release, err := h.take(startBy, h.slots, "free concurrency slot")
	cancel()
	if err != nil {
		return notStarted(err)
	}
	defer release()
	return h.deliver(ctx, pl, taskQueue(ctx), false)
}
