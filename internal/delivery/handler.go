package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
	"github.com/postbackhq/postback/templates"
)

// outcomeWriteTimeout bounds an attempt's outcome write, which does not
// end with the task's context.
const outcomeWriteTimeout = 5 * time.Second

// maxResponseKept is how much of a partner's answer an attempt records.
const maxResponseKept = 2 << 10

// Handler processes delivery tasks: it reads the partner's current config,
// checks consent and requirements, renders and sends the request, and
// records the attempt; then the delivery is delivered, retried later
// (through asynq, with the delay from retry) or dead-lettered.
type Handler struct {
	live   *config.Live
	store  *store.Store
	sender *Sender
	gate   *Gate // nil: no partner isolation
	log    *slog.Logger
	now    func() time.Time
	rnd    func() float64
	queue  *asynq.Client // where bundles hand deliveries off to
	slots  chan struct{} // nil: no cap of its own

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
}

// NewHandler returns a Handler.
func NewHandler(cfg HandlerConfig) *Handler {
	h := &Handler{live: cfg.Config, store: cfg.Store, sender: cfg.Sender, gate: cfg.Gate, log: cfg.Logger, now: cfg.Now, rnd: cfg.Rand, queue: cfg.Queue}
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
		return retry.Defer(0, err)
	}
	defer release()
	return h.deliver(ctx, pl, taskQueue(ctx), false)
}

// undecodable is the error of a task that cannot be read. One that a newer
// postback wrote goes back to the queue, without spending an attempt, for
// a newer worker (a deployment mid-upgrade). Anything else cannot be
// replayed either: asynq's archive keeps it visible to `asynq` tooling.
func undecodable(err error) error {
	if errors.Is(err, wire.ErrNewerFormat) {
		return retry.Defer(time.Minute, err)
	}
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}

// deliver makes one attempt of delivery pl, taken from queue, and records
// it. It returns nil when the delivery needs nothing more from this task,
// or a retry.After or retry.Defer error that says when to try again.
//
// In a bundle, a delivery that was attempted before (the bundle runs again
// after a crash, and the delivery's own task may already be scheduled) is
// not attempted: deliver returns errHandOff, and the bundle hands it to
// its own task.
func (h *Handler) deliver(ctx context.Context, pl *wire.Payload, queue string, bundled bool) error {
	cfg := h.live.Load()
	p := cfg.Partner(pl.Partner) // nil: removed from the config since
	lease := store.Lease{Token: leaseToken(), TTL: p.AttemptTimeout() + wire.TaskTimeoutSlack}
	rec, claim, busy, err := h.store.GetForAttempt(ctx, pl.Delivery, pl.Event.ID, lease)
	switch {
	case err != nil:
		return retry.Defer(time.Second, err) // Redis trouble: try again without spending an attempt
	case rec != nil && rec.Status.Final():
		return nil // already delivered, dead or skipped: a duplicate task sends nothing
	case busy > 0:
		// Another task of the delivery is attempting it (a bundle's and
		// the delivery's own, after a repeat of the event): look again
		// soon; by then it is final, or failed and scheduled its retry.
		h.log.Debug("deferred", "delivery", pl.Delivery, "partner", pl.Partner, "outcome", retry.Deferred.String(),
			"reason", ErrAttemptUnderWay.Error())
		return retry.Defer(min(busy, 2*time.Second)+time.Duration(h.rnd()*float64(250*time.Millisecond)), ErrAttemptUnderWay)
	}
	m := &store.Meta{ID: pl.Delivery, Partner: pl.Partner, EventID: pl.Event.ID, Lease: lease.Token}
	err = h.attempt(ctx, pl, queue, bundled, rec, claim, m, cfg, p)
	if m.Lease != "" {
		// No outcome write freed the lease: the delivery was deferred or
		// dropped, or Redis failed (then it expires).
		if rerr := h.store.Release(context.WithoutCancel(ctx), pl.Delivery, m.Lease); rerr != nil {
			h.log.Debug("lease not released", "delivery", pl.Delivery, "err", rerr)
		}
	}
	return err
}

// ErrAttemptUnderWay defers a delivery task while another task of the
// same delivery is attempting it.
var ErrAttemptUnderWay = errors.New("another attempt of the delivery is under way")

// leaseToken names one attempt's lease.
func leaseToken() string { return strconv.FormatUint(rand.Uint64(), 36) }

// attempt is deliver's part once the delivery is held (m.Lease): the
// checks, the send and the outcome write. A successful outcome write frees
// the lease and clears m.Lease.
func (h *Handler) attempt(ctx context.Context, pl *wire.Payload, queue string, bundled bool, rec *store.Record, claim []byte, m *store.Meta, cfg *config.Config, p *config.Partner) error {
	switch {
	case bundled && rec != nil && rec.Attempts > 0:
		return errHandOff
	case rec != nil && rec.Replays > 0 && queue == wire.QueueDefault:
		// A replayed delivery's task is in the replay queue; this one
		// came with a repeat of the event, before its claim said so.
		h.log.Info("dropped", "delivery", pl.Delivery, "partner", pl.Partner, "reason", "the delivery is being replayed")
		return nil
	case rec == nil && claim != nil && !promised(claim, pl):
		// A repeat of the event, routed differently from the first call,
		// enqueued this task along with its claim (see Client.Enqueue); the
		// first receipt does not send to this partner.
		h.log.Info("dropped", "delivery", pl.Delivery, "partner", pl.Partner, "reason", "not in the event's first receipt")
		return nil
	}
	retention := cfg.Delivery.AttemptLogRetention
	if p == nil || !p.Enabled {
		reason := "partner removed from config"
		if p != nil {
			reason = "partner disabled"
		}
		return h.skip(ctx, m, reason, retention)
	}
	var v templates.Values
	attempt, replay := 1, 0
	if rec != nil {
		attempt, replay = rec.Attempts+1, rec.Replays
	}
	p.Values(&v, pl.Event, pl.Delivery, attempt)
	if missing := p.Missing(&v); missing != "" {
		return h.skip(ctx, m, "require: "+missing+" is missing", retention)
	}
	req, err := p.RenderValues(&v, pl.Delivery)
	if err != nil {
		observeOutcome(p.ID, retry.RenderFailed)
		h.log.Warn("dead-lettered", "delivery", pl.Delivery, "partner", p.ID, "attempt", attempt, "outcome", retry.RenderFailed.String(), "reason", retry.RenderFailed.String(), "error", err.Error())
		return h.dead(ctx, m, pl, retry.RenderFailed, store.Attempt{N: attempt, At: h.now(), Outcome: retry.RenderFailed.String(), Error: err.Error(), Replay: replay}, retention)
	}

	// Partner isolation: a deferral spends no attempt.
	release := func(retry.Result) {}
	if h.gate != nil {
		if release, err = h.gate.Acquire(ctx, p); err != nil {
			return h.deferred(ctx, m, pl, p, err)
		}
	}
	start := h.now()
	res, resp := h.sender.Send(ctx, p, req, pl.Delivery)
	release(res)
	// The outcome is written even if the task's deadline passed during the
	// send: unrecorded, a delivered request would be sent again.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeWriteTimeout)
	defer cancel()
	dec := p.Success.Classify(res, h.now())
	a := store.Attempt{
		N: attempt, At: start, Duration: h.now().Sub(start), Status: res.StatusCode,
		Outcome: dec.Outcome.String(), URL: req.URL, Replay: replay,
	}
	if dec.Outcome != retry.Delivered {
		a.Error = dec.Reason
	}
	if resp != nil {
		a.Response = string(resp.Body[:min(len(resp.Body), maxResponseKept)])
	}
	log := attemptLog{h.log, ctx, []any{"delivery", pl.Delivery, "partner", p.ID, "attempt", attempt, "outcome", a.Outcome,
		"status", res.StatusCode, "duration_ms", a.Duration.Milliseconds(), "host", logHost(req.URL)}}
	observeAttempt(p.ID, dec.Outcome, a.Duration)

	switch dec.Outcome {
	case retry.Delivered:
		if _, err := h.store.AddAttempt(wctx, *m, a, store.StatusDelivered, retention); err != nil {
			log.Error("delivered but not recorded", "err", err)
		} else {
			m.Lease = ""
		}
		log.Info("delivered")
		observeFinal(p.ID, store.StatusDelivered, pl.First(), h.now())
		return nil
	case retry.Retry:
		// Decide before recording, so that an exhausted delivery's last
		// attempt and its dead letter are one atomic write.
		delay, exhausted := p.Retry.Next(attempt, pl.First(), h.now(), dec.RetryAfter, h.rnd)
		if exhausted {
			log.Warn("dead-lettered", "reason", retry.Exhausted.String(), "error", redactText(dec.Reason))
			observeOutcome(p.ID, retry.Exhausted)
			return h.dead(wctx, m, pl, retry.Exhausted, a, retention)
		}
		if _, err := h.store.AddAttempt(wctx, *m, a, store.StatusRetrying, retention); err != nil {
			log.Error("attempt not recorded", "err", err)
		} else {
			m.Lease = ""
		}
		if dec.RetryAfter > 0 {
			delay = wholeSecondDue(h.now(), delay)
		}
		log.Info("retrying", "in", delay.String(), "error", redactText(dec.Reason))
		return retry.After(delay, errors.New(dec.Reason))
	default: // rejected, blocked
		log.Warn("dead-lettered", "reason", dec.Outcome.String(), "error", redactText(dec.Reason))
		return h.dead(wctx, m, pl, dec.Outcome, a, retention)
	}
}

// taskQueue is the queue the running task came from.
func taskQueue(ctx context.Context) string {
	q, _ := asynq.GetQueueName(ctx)
	return q
}

// promised reports whether the event's claim (its first receipt) queued
// this delivery. A claim that cannot be read is taken as a yes: better a
// send than a lost conversion.
func promised(claim []byte, pl *wire.Payload) bool {
	ds, err := wire.DecodeClaim(pl.Event.ID, claim)
	if err != nil {
		return true
	}
	for _, d := range ds {
		if d.ID == pl.Delivery {
			return d.Status != "skipped"
		}
	}
	return false
}

// attemptLog writes an attempt's lines with its common attributes, which
// slog formats only when the level is enabled (slog.Logger.With would
// format them for every attempt).
type attemptLog struct {
	l     *slog.Logger
	ctx   context.Context
	attrs []any
}

func (a attemptLog) log(level slog.Level, msg string, args ...any) {
	a.l.Log(a.ctx, level, msg, append(a.attrs[:len(a.attrs):len(a.attrs)], args...)...)
}

func (a attemptLog) Info(msg string, args ...any)  { a.log(slog.LevelInfo, msg, args...) }
func (a attemptLog) Warn(msg string, args ...any)  { a.log(slog.LevelWarn, msg, args...) }
func (a attemptLog) Error(msg string, args ...any) { a.log(slog.LevelError, msg, args...) }

// skip records a delivery that will not be sent, and why.
func (h *Handler) skip(ctx context.Context, m *store.Meta, reason string, retention time.Duration) error {
	h.log.Info("skipped", "delivery", m.ID, "partner", m.Partner, "reason", reason)
	if err := h.store.SetStatus(ctx, *m, store.StatusSkipped, reason, h.now(), retention); err != nil {
		return retry.Defer(time.Second, err)
	}
	m.Lease = "" // freed by the write
	observeOutcome(m.Partner, retry.Skipped)
	observeFinal(m.Partner, store.StatusSkipped, time.Time{}, h.now())
	return nil
}

// dead records attempt a and moves the delivery to the partner's DLQ.
func (h *Handler) dead(ctx context.Context, m *store.Meta, pl *wire.Payload, why retry.Outcome, a store.Attempt, retention time.Duration) error {
	raw, err := wire.EncodePayload(pl)
	if err == nil {
		_, err = h.store.DeadLetterAttempt(ctx, *m, a, why.String(), raw, h.now())
	}
	if err != nil {
		// Not stored in the DLQ: keep the task alive rather than lose it.
		// The attempt is not recorded either, so it is made again.
		return retry.Defer(time.Second, err)
	}
	m.Lease = "" // freed by the write
	observeFinal(m.Partner, store.StatusDead, time.Time{}, h.now())
	return nil
}

func (h *Handler) deadLetter(ctx context.Context, m *store.Meta, pl *wire.Payload, reason, detail string) error {
	raw, err := wire.EncodePayload(pl)
	if err == nil {
		err = h.store.DeadLetter(ctx, *m, reason, detail, raw, h.now())
	}
	if err != nil {
		// Not stored in the DLQ: keep the task alive rather than lose it.
		return retry.Defer(time.Second, err)
	}
	m.Lease = "" // freed by the write
	observeFinal(m.Partner, store.StatusDead, time.Time{}, h.now())
	return nil
}

// wholeSecondDue stretches delay so that now+delay falls on a whole
// second. asynq stores a retry's due time in whole Unix seconds, truncated,
// so a retry can otherwise run up to a second early; a partner's
// Retry-After must not be undercut.
func wholeSecondDue(now time.Time, delay time.Duration) time.Duration {
	due := now.Add(delay)
	if t := due.Truncate(time.Second); t.Before(due) {
		due = t.Add(time.Second)
	}
	return due.Sub(now)
}
