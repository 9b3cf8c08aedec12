package delivery

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
	"github.com/postbackhq/postback/templates"
)

// outcomeWriteTimeout bounds an attempt's outcome write, which does not
// end with the task's context.
const outcomeWriteTimeout = 5 * time.Second

// maxResponseKept is how much of a partner's answer an attempt records.
const maxResponseKept = 2 << 10

// ErrAttemptUnderWay defers a delivery task while another task of the
// same delivery is attempting it.
var ErrAttemptUnderWay = errors.New("another attempt of the delivery is under way")

// errHandOff: the delivery was attempted before; its own task goes on.
var errHandOff = errors.New("attempted before: handed to the delivery's own task")

// run is one attempt of one delivery: what the handler knows of it from
// the moment it holds the delivery's lease to the outcome write that frees
// the lease.
type run struct {
	h       *Handler
	st      *store.Store // the delivery's shard
	pl      *wire.Payload
	queue   string // the task's queue
	bundled bool   // part of a bundle: one attempted before is handed off
	cfg     *config.Config
	p       *config.Partner // nil: removed from the config since
	rec     *store.Record   // nil: never attempted
	claim   []byte          // the event's claim, read along with rec
	meta    store.Meta      // the delivery's identity and lease token
	seqTurn store.Turn      // its turn in its sequence, read with the record
	// freed is set once an outcome write has freed the lease.
	freed bool
}

// deliver makes one attempt of delivery pl, taken from queue, and records
// it. It returns nil when the delivery needs nothing more from this task,
// or an error from decide.go that says when to try again.
//
// In a bundle, a delivery that was attempted before (the bundle runs again
// after a crash, and the delivery's own task may already be scheduled) is
// not attempted: deliver returns errHandOff, and the bundle hands it to
// its own task.
func (h *Handler) deliver(ctx context.Context, pl *wire.Payload, queue string, bundled bool) error {
	cfg := h.live.Load()
	p := cfg.Partner(pl.Partner)
	if h.pauses.Of(pl.Partner).Paused && p != nil && p.Enabled {
		// Held before any Redis read: a paused partner's tasks come back
		// every few seconds, and cost the worker nothing more.
		observeOutcome(pl.Partner, retry.Deferred)
		h.log.Debug("deferred", "delivery", pl.Delivery, "partner", pl.Partner, "outcome", retry.Deferred.String(),
			"reason", ErrPartnerPaused.Error())
		return partnerPaused(h.rnd())
	}
	lease := store.Lease{Token: leaseToken(), TTL: p.AttemptTimeout() + wire.TaskTimeoutSlack}
	seq := ""
	if pl.Order != "" {
		seq = h.store.ForQueue(queue).OrderKey(pl.Partner, pl.Order)
	}
	st := h.store.ForQueue(queue) // the shard the task's queue is in holds the delivery
	rec, claim, busy, turn, err := st.GetForAttempt(ctx, pl.Delivery, pl.Event.ID, lease, seq)
	switch {
	case err != nil:
		// The read may have taken the lease all the same (its answer was
		// lost): free it, or the task's next run waits out its TTL.
		h.release(ctx, st, pl.Delivery, lease)
		return storeFailed(err)
	case rec != nil && rec.Status.Final():
		return nil // already delivered, dead or skipped: a duplicate task sends nothing
	case busy > 0:
		// Another task of the delivery is attempting it (a bundle's and
		// the delivery's own, after a repeat of the event): look again
		// soon; by then it is final, or failed and scheduled its retry.
		h.log.Debug("deferred", "delivery", pl.Delivery, "partner", pl.Partner, "outcome", retry.Deferred.String(),
			"reason", ErrAttemptUnderWay.Error())
		return underWay(busy, h.rnd())
	}
	r := &run{h: h, st: st, pl: pl, queue: queue, bundled: bundled, cfg: cfg, p: p, rec: rec, claim: claim,
		meta: store.Meta{ID: pl.Delivery, Partner: pl.Partner, EventID: pl.Event.ID, Lease: lease.Token}}
	r.meta.Order, r.seqTurn = seq, turn
	err = r.attempt(ctx)
	if !r.freed {
		// No outcome write freed the lease: the delivery was deferred or
		// dropped, or Redis failed.
		h.release(ctx, st, pl.Delivery, lease)
	}
	return err
}

// releaseRetry is how often a lease that could not be freed is tried
// again; releaseSettle how long after the first release that works it is
// freed once more; releaseGiveUp when the tries stop.
const (
	releaseRetry  = time.Second
	releaseSettle = 3 * time.Second
	releaseGiveUp = 10 * time.Minute
)

// release frees delivery id's lease if it still holds lease's token. When
// Redis fails, it keeps trying in the background until Redis answers, and
// frees it once more releaseSettle later.
//
// Trying until the lease's TTL ran out from now is not enough. When Redis
// freezes, the script that took the lease may wait in Redis's input
// buffer, its caller gone (it timed out), and run only when Redis comes
// back, taking the lease for its whole TTL from then on, possibly just
// after a release that was waiting too. The task's next run would then be
// deferred until the lease expired: measured, a delivery held 45 s after
// a 35 s freeze, the TTL of a partner with a 30 s timeout.
func (h *Handler) release(ctx context.Context, st *store.Store, id string, lease store.Lease) {
	ctx = context.WithoutCancel(ctx)
	err := st.Release(ctx, id, lease.Token)
	if err == nil {
		return
	}
	h.log.Debug("lease not released", "delivery", id, "err", err)
	go releaseLater(ctx, st, id, lease.Token)
}

// afterRelease runs after releaseLater's first release that works (tests).
var afterRelease = func() {}

// releaseLater frees delivery id's lease held by token once Redis
// answers, and once more releaseSettle later (see Handler.release).
func releaseLater(ctx context.Context, st *store.Store, id, token string) {
	for until := time.Now().Add(releaseGiveUp); time.Now().Before(until); {
		time.Sleep(releaseRetry)
		if st.Release(ctx, id, token) == nil {
			afterRelease()
			time.Sleep(releaseSettle)
			_ = st.Release(ctx, id, token)
			return
		}
	}
}

// leaseToken names one attempt's lease.
func leaseToken() string { return strconv.FormatUint(rand.Uint64(), 36) }

// number is the attempt's number (1 for the first) and the delivery's
// count of replays from the DLQ.
func (r *run) number() (attempt, replay int) {
	if r.rec == nil {
		return 1, 0
	}
	return r.rec.Attempts + 1, r.rec.Replays
}

// first is when the delivery's max_age starts, as of now: its first
// enqueue, moved later by the time its partner was paused since then. A
// pause stops the max_age clock; it goes on once the held deliveries can
// have seen the resume (pauseTail after it). Zero when the enqueue time is
// unknown.
func (r *run) first(now time.Time) time.Time {
	first := r.pl.First()
	if first.IsZero() {
		return first
	}
	return first.Add(r.h.pauses.Of(r.pl.Partner).During(first, now, pauseTail))
}

// attempt is the delivery once held: the checks, the send and the outcome
// write.
func (r *run) attempt(ctx context.Context) error {
	h, pl, p := r.h, r.pl, r.p
	if r.bundled && r.rec != nil && r.rec.Attempts > 0 {
		return errHandOff
	}
	if why := r.notOurs(); why != "" {
		h.log.Info("dropped", "delivery", pl.Delivery, "partner", pl.Partner, "reason", why)
		if r.meta.Order != "" && r.rec == nil {
			_, _ = r.st.OrderDrop(ctx, r.meta.Order, pl.Delivery) // no later delivery waits for it
		}
		return nil
	}
	if p == nil || !p.Enabled {
		reason := "partner removed from config"
		if p != nil {
			reason = "partner disabled"
		}
		return r.skip(ctx, reason, "")
	}
	if err := r.turn(ctx); err != nil {
		return err
	}
	attempt, replay := r.number()
	var v templates.Values
	p.Values(&v, pl.Event, pl.Delivery, attempt)
	if missing := p.Missing(&v); missing != "" {
		return r.skip(ctx, "require: "+missing+" is missing", "")
	}
	switch reason, code, err := r.held(ctx, &v); {
	case err != nil:
		return storeFailed(err)
	case reason != "":
		return r.skip(ctx, reason, code)
	}
	req, err := p.RenderValues(&v, pl.Delivery)
	if err != nil {
		observeOutcome(p.ID, retry.RenderFailed)
		h.log.Warn("dead-lettered", "delivery", pl.Delivery, "partner", p.ID, "attempt", attempt, "outcome", retry.RenderFailed.String(), "reason", retry.RenderFailed.String(), "error", err.Error())
		return r.dead(ctx, retry.RenderFailed, store.Attempt{N: attempt, At: h.now(), Outcome: retry.RenderFailed.String(), Error: err.Error(), Replay: replay})
	}

	// The payout guard: one delivery of a dedup key is sent.
	if p.Dedup != nil {
		dup, err := r.dedup(ctx, &v)
		if err != nil {
			return storeFailed(err)
		}
		if dup != "" {
			return r.skip(ctx, dup, config.ReasonDuplicate)
		}
	}

	// Partner isolation: a deferral spends no attempt.
	release := func(retry.Result) {}
	if h.gate != nil {
		if release, err = h.gate.Acquire(ctx, p); err != nil {
			return r.deferred(ctx, err)
		}
	}
	start := h.now()
	sctx, span := h.tracer.Attempt(ctx, pl.TraceParent)
	res, resp := h.sender.Send(sctx, p, req, pl.Delivery)
	release(res)
	// The outcome is written even if the task's deadline passed during the
	// send: unrecorded, a delivered request would be sent again.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeWriteTimeout)
	defer cancel()
	dec := p.Success.Classify(res, h.now())
	a := store.Attempt{
		N: attempt, At: start, Duration: h.now().Sub(start), Status: res.StatusCode,
		Outcome: dec.Outcome.String(), URL: req.URL, Replay: replay, Rule: dec.Rule,
	}
	if dec.Outcome != retry.Delivered && dec.Outcome != retry.Duplicate {
		a.Error = dec.Reason
	}
	if resp != nil {
		a.Response = string(resp.Body[:min(len(resp.Body), maxResponseKept)])
	}
	log := attemptLog{h.log, ctx, []any{"delivery", pl.Delivery, "partner", p.ID, "attempt", attempt, "outcome", a.Outcome,
		"status", res.StatusCode, "duration_ms", a.Duration.Milliseconds(), "host", logHost(req.URL)}}
	observeAttempt(p.ID, dec.Outcome, a.Duration)
	span.EndAttempt(tracing.AttemptEnd{Delivery: pl.Delivery, Partner: p.ID, Attempt: attempt, Replay: replay,
		Outcome: a.Outcome, Status: res.StatusCode, Duration: a.Duration})
	r.countHealth(a)
	err = r.settle(wctx, dec, a, log)
	r.reportHealth(a)
	return err
}

// notOurs says why this task, which came with a repeat of the event, is
// not the delivery's and must send nothing; "" when it is.
func (r *run) notOurs() string {
	switch rec := r.rec; {
	case rec != nil && rec.Replays > 0 && isDefaultQueue(r.queue):
		// A replayed delivery's task is in the replay queue; this one
		// came with a repeat of the event, before its claim said so.
		return "the delivery is being replayed"
	case rec == nil && r.claim != nil && !promised(r.claim, r.pl):
		// A repeat of the event, routed differently from the first call,
		// enqueued this task along with its claim (see intake); the first
		// receipt does not send to this partner.
		return "not in the event's first receipt"
	}
	return ""
}

// settle records attempt a by what the partner's answer decided: the
// delivery is delivered, retried later or dead-lettered.
func (r *run) settle(ctx context.Context, dec retry.Decision, a store.Attempt, log attemptLog) error {
	h, pl, p := r.h, r.pl, r.p
	retention := r.cfg.Delivery.AttemptLogRetention
	switch dec.Outcome {
	case retry.Delivered, retry.Duplicate:
		// A duplicate is final as delivered is (its record says
		// delivered, which every reader knows), and counted apart.
		if err := r.write(func(m store.Meta) error {
			_, err := r.st.AddAttempt(ctx, m, a, retry.StatusDelivered, retention)
			return err
		}); err != nil {
			log.Error("delivered but not recorded", "err", err)
		}
		if dec.Outcome == retry.Duplicate {
			log.Info("duplicate: the partner already had it", "rule", dec.Rule)
			observeDuplicate(p.ID)
			return nil
		}
		log.Info("delivered")
		observeFinal(p.ID, retry.StatusDelivered, pl.First(), h.now())
		return nil
	case retry.Retry:
		// Decide before recording, so that an exhausted delivery's last
		// attempt and its dead letter are one atomic write.
		delay, exhausted := p.Retry.Next(a.N, r.first(h.now()), h.now(), dec.RetryAfter, h.rnd)
		if exhausted {
			log.Warn("dead-lettered", "reason", retry.Exhausted.String(), "error", redactText(dec.Reason))
			observeOutcome(p.ID, retry.Exhausted)
			return r.dead(ctx, retry.Exhausted, a)
		}
		if err := r.write(func(m store.Meta) error {
			_, err := r.st.AddAttempt(ctx, m, a, retry.StatusRetrying, retention)
			return err
		}); err != nil {
			log.Error("attempt not recorded", "err", err)
		}
		if dec.RetryAfter > 0 {
			delay = wholeSecondDue(h.now(), delay)
		}
		log.Info("retrying", "in", delay.String(), "error", redactText(dec.Reason))
		return retryLater(delay, dec.Reason)
	default: // rejected, blocked
		log.Warn("dead-lettered", "reason", dec.Outcome.String(), "error", redactText(dec.Reason))
		return r.dead(ctx, dec.Outcome, a)
	}
}

// write makes one of the delivery's outcome writes, each of which frees
// its lease when it succeeds.
func (r *run) write(f func(store.Meta) error) error {
	err := f(r.meta)
	if err == nil {
		r.freed = true
	}
	return err
}

// skip records a delivery that will not be sent, and why; code names the
// lifecycle rule that held it back (config.Reason…), "" for the others.
func (r *run) skip(ctx context.Context, reason, code string) error {
	h, m := r.h, r.meta
	h.log.Info("skipped", "delivery", m.ID, "partner", m.Partner, "reason", redactText(reason))
	if err := r.write(func(m store.Meta) error {
		return r.st.Skip(ctx, m, reason, code, h.now(), r.cfg.Delivery.AttemptLogRetention)
	}); err != nil {
		return storeFailed(err)
	}
	observeOutcome(m.Partner, retry.Skipped)
	observeSkip(m.Partner, code)
	return nil
}

// dead records attempt a and moves the delivery to the partner's DLQ.
func (r *run) dead(ctx context.Context, why retry.Outcome, a store.Attempt) error {
	return r.deadLetter(ctx, deadNote{why.String(), a.Status, a.Error, a.URL}, func(m store.Meta, raw []byte) error {
		_, err := r.st.DeadLetterAttempt(ctx, m, a, why.String(), raw, r.h.now())
		return err
	})
}

// deadLetter moves the delivery to the partner's DLQ with put. Not
// stored in the DLQ, it stays alive in its task rather than be lost: the
// attempt is not recorded either, so it is made again.
func (r *run) deadLetter(ctx context.Context, note deadNote, put func(m store.Meta, raw []byte) error) error {
	raw, err := wire.EncodePayload(r.pl)
	if err == nil {
		err = r.write(func(m store.Meta) error { return put(m, raw) })
	}
	if err != nil {
		return storeFailed(err)
	}
	observeFinal(r.meta.Partner, retry.StatusDead, time.Time{}, r.h.now())
	r.indexDead(ctx, note)
	return nil
}

// deferred handles a delivery the gate held back (err from Gate.Acquire):
// it runs again after the gate's delay without spending an attempt, unless
// that would start it past the partner's max_age: then it is dead-lettered
// as exhausted, as deferrals are still bound by max_age.
func (r *run) deferred(ctx context.Context, err error) error {
	h, m := r.h, r.meta
	d, _, _ := retry.DelayOf(err)
	cause := errors.Unwrap(err)
	if cause == nil {
		cause = err
	}
	if r.p.Retry.Expired(r.first(h.now()), h.now().Add(d)) {
		detail := "max_age reached while deferred: " + cause.Error()
		h.log.Warn("dead-lettered", "delivery", m.ID, "partner", m.Partner, "outcome", retry.Exhausted.String(),
			"reason", retry.Exhausted.String(), "error", detail)
		observeOutcome(m.Partner, retry.Exhausted)
		return r.deadLetter(ctx, deadNote{retry.Exhausted.String(), 0, detail, ""}, func(m store.Meta, raw []byte) error {
			return r.st.DeadLetter(ctx, m, retry.Exhausted.String(), detail, raw, h.now())
		})
	}
	observeOutcome(m.Partner, retry.Deferred)
	h.log.Debug("deferred", "delivery", m.ID, "partner", m.Partner, "outcome", retry.Deferred.String(),
		"in", d.String(), "reason", cause.Error())
	return err
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
			return d.Status != retry.StatusSkipped
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

// isDefaultQueue says whether q is a shard's queue of new deliveries.
func isDefaultQueue(q string) bool {
	if q == wire.QueueDefault {
		return true
	}
	_, replay, ok := wire.QueueShard(q)
	return ok && !replay
}
