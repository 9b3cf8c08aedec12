package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// startDeadline is ctx with the deadline by which a delivery to a partner
// with timeout must start (a slot wait ends there): the task's deadline
// less timeout and startSlack.
func startDeadline(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, dl.Add(-timeout-wire.StartSlack))
}

// handOffTimeout bounds the write that hands a bundle's delivery to its
// own task, which goes on after the bundle's context is done.
const handOffTimeout = 5 * time.Second

// ProcessBundle is the asynq handler of bundle tasks: it attempts every
// delivery of the bundle at once (each holds one of the worker's
// concurrency slots while it runs) and hands each one that needs another
// run to its own task as soon as its attempt ends. It fails, to be run
// again without spending an attempt, when a hand-off could not be stored
// (and, like any task, when it outlives its deadline).
func (h *Handler) ProcessBundle(ctx context.Context, t *asynq.Task) error {
	pls, err := wire.DecodeBundle(t.Payload())
	if err != nil {
		return undecodable(err)
	}
	if h.queue == nil {
		return misconfigured(errNoQueue)
	}
	queue := cmp.Or(taskQueue(ctx), wire.QueueDefault)
	// A delivery that has not started by then waits for its own task
	// instead, so that the ones that start have their whole timeout.
	p := h.live.Load().Partner(pls[0].Partner)
	startBy, cancel := startDeadline(ctx, p.AttemptTimeout())
	defer cancel()
	// A partner's concurrency cap is the gate's, which would defer what
	// goes over it; the bundle's own deliveries take turns under it
	// instead of spending hand-offs on each other.
	var turns chan struct{}
	if p != nil && p.Concurrency > 0 && p.Concurrency < len(pls) {
		turns = make(chan struct{}, p.Concurrency)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []error
	)
	one := func(pl *wire.Payload) {
		err := h.bundled(ctx, startBy, turns, pl, queue)
		if err == nil {
			return
		}
		delay, _, _ := retry.DelayOf(err) // errHandOff: 0, at once
		if herr := h.handOff(ctx, pl, queue, delay); herr != nil {
			h.log.Warn("not handed off", "delivery", pl.Delivery, "partner", pl.Partner, "err", herr)
			mu.Lock()
			failed = append(failed, herr)
			mu.Unlock()
			return
		}
		h.log.Debug("handed off", "delivery", pl.Delivery, "partner", pl.Partner, "in", delay.String(), "reason", redactText(err.Error()))
	}
	// Deliveries of one sequence (an ordered partner's click or
	// transaction) run one after the other, in the bundle's order, which
	// is the order their events were accepted: each finds the one before
	// it final, rather than waiting for its turn in a hand-off.
	for _, seq := range sequences(pls) {
		wg.Go(func() {
			for _, pl := range seq {
				one(pl)
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		return noHandOff(failed, len(pls))
	}
	return nil
}

// sequences groups pls by their sequence, keeping their order: a
// delivery in no sequence is a group of its own.
func sequences(pls []*wire.Payload) [][]*wire.Payload {
	out := make([][]*wire.Payload, 0, len(pls))
	at := map[string]int{}
	for _, pl := range pls {
		if pl.Order == "" {
			out = append(out, []*wire.Payload{pl})
			continue
		}
		if i, ok := at[pl.Order]; ok {
			out[i] = append(out[i], pl)
			continue
		}
		at[pl.Order] = len(out)
		out = append(out, []*wire.Payload{pl})
	}
	return out
}

// errNoQueue: a bundle cannot run on a handler that cannot hand off.
var errNoQueue = errors.New("delivery: the handler has no queue to hand a bundle's deliveries off to (HandlerConfig.Queue)")

// bundled runs one delivery of a bundle: a turn under the partner's
// concurrency cap (turns, nil for none) and one of the handler's slots,
// both until startBy, then deliver. A panic becomes a deferral of that delivery, handed to its own
// task (where asynq's recovery applies), rather than the worker's end: the
// deliveries run on goroutines of their own.
func (h *Handler) bundled(ctx, startBy context.Context, turns chan struct{}, pl *wire.Payload, queue string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("panic in a delivery", "delivery", pl.Delivery, "partner", pl.Partner, "panic", fmt.Sprint(r))
			err = panicked(r)
		}
	}()
	turn, err := h.take(startBy, turns, "turn under the partner's concurrency")
	if err != nil {
		return notStarted(err)
	}
	defer turn()
	release, err := h.take(startBy, h.slots, "free concurrency slot")
	if err != nil {
		return notStarted(err)
	}
	defer release()
	if h.beforeBundled != nil {
		h.beforeBundled(pl)
	}
	return h.deliver(ctx, pl, queue, true)
}

// handOff enqueues delivery pl's own task to run after delay. A task of
// the delivery that already exists stays as it is: it was handed off
// before, or a repeat of the event made it.
func (h *Handler) handOff(ctx context.Context, pl *wire.Payload, queue string, delay time.Duration) error {
	task, err := wire.NewTask(pl, h.live.Load().Partner(pl.Partner).AttemptTimeout(), queue)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handOffTimeout)
	defer cancel()
	_, err = h.queue.EnqueueContext(ctx, task, asynq.ProcessIn(delay))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("hand off %s: %w", pl.Delivery, err)
	}
	return nil
}

// errStopping: the worker is shutting down and starts no more deliveries.
var errStopping = errors.New("the worker is shutting down")

// Stop makes the handler start no more deliveries: those of a bundle that
// have not started are handed to their own tasks, and a delivery task that
// waits for a slot goes back to the queue, neither spending an attempt.
// Deliveries under way finish. Worker.Shutdown calls it first.
func (h *Handler) Stop() { h.stopOnce.Do(func() { close(h.stopping) }) }

// take waits for a place in sem (what names it in the error); release
// frees it. A nil sem never waits. Either way it refuses once the handler
// is stopping, or when ctx is done, even if a place is free.
func (h *Handler) take(ctx context.Context, sem chan struct{}, what string) (release func(), err error) {
	late := func() error { return fmt.Errorf("no %s in time: %w", what, context.Cause(ctx)) }
	select {
	case <-h.stopping:
		return nil, errStopping
	default:
	}
	if ctx.Err() != nil { // a free place must not win over a passed deadline
		return nil, late()
	}
	if sem == nil {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-h.stopping:
		return nil, errStopping
	case <-ctx.Done():
		return nil, late()
	}
}
