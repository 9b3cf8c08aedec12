package dispatcher

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/retry"
)

// A bundle is one asynq task that carries several deliveries to the same
// partner, made when a batch of events reaches intake together. asynq
// takes one task per Redis round trip and writes it three times (enqueue,
// dequeue, done); a bundle of n pays that once for n deliveries.
//
// Every delivery in a bundle keeps what a delivery has: its id, record,
// attempts, Idempotency-Key, retries and dead letter. A bundle only makes
// first attempts. Whatever is left to do after them (a retry, a deferral)
// is handed to the delivery's own task, with the delay it asked for and
// the delivery id as the task id, exactly the task intake would have made.
// So a bundle that runs again (the worker died under it) re-sends only what
// had no answer recorded: delivered ones are final, and ones attempted
// before are handed off again, which conflicts harmlessly with the task
// handed off the first time.
const (
	// TypeDeliverBundle is the asynq task type of a bundle of deliveries.
	//
	// It must not start with TypeDeliver: asynq's ServeMux routes a type to
	// the longest registered prefix, and a worker older than bundles would
	// hand bundles to its delivery handler, which archives what it cannot
	// read. Unrouted, a bundle is retried until a worker that knows it
	// takes it.
	TypeDeliverBundle = "postback:bundle"
	// DefaultBundleSize is ClientConfig.BundleSize's default.
	DefaultBundleSize = 50
	// bundleV1 is the version byte of a bundle's payload:
	//
	//	version byte (bundleV1)
	//	count   uvarint
	//	count × (uvarint length, delivery payload as encodePayload writes it)
	//
	// It is unlike any delivery payload's first byte, so that one is never
	// read as the other.
	bundleV1 = 0xb1
)

// errHandOff: the delivery was attempted before; its own task goes on.
var errHandOff = errors.New("attempted before: handed to the delivery's own task")

func encodeBundle(pls []*payload) ([]byte, error) {
	b := []byte{bundleV1}
	b = binary.AppendUvarint(b, uint64(len(pls)))
	for _, pl := range pls {
		one, err := encodePayload(pl)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(one)))
		b = append(b, one...)
	}
	return b, nil
}

func decodeBundle(b []byte) ([]*payload, error) {
	raws, err := splitBundle(b)
	if err != nil {
		return nil, err
	}
	pls := make([]*payload, len(raws))
	for i, raw := range raws {
		if pls[i], err = decodePayload(raw); err != nil {
			return nil, fmt.Errorf("decode bundle: delivery %d of %d: %w", i+1, len(raws), err)
		}
	}
	return pls, nil
}

// splitBundle returns the encoded delivery payloads of bundle b, without
// decoding them.
func splitBundle(b []byte) ([][]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("decode bundle: empty payload")
	}
	if b[0] != bundleV1 {
		return nil, fmt.Errorf("decode bundle: unknown version %#x (%w)", b[0], errNewerFormat)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > MaxBatch {
		return nil, fmt.Errorf("decode bundle: bad delivery count")
	}
	b = b[k:]
	raws := make([][]byte, 0, n)
	for i := range n {
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, fmt.Errorf("decode bundle: delivery %d of %d: %w", i+1, n, errPayloadShort)
		}
		raws = append(raws, b[k:k+int(size)])
		b = b[k+int(size):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("decode bundle: %d bytes after the last delivery", len(b))
	}
	return raws, nil
}

// newBundleTask builds the asynq task of deliveries pls, all to partner p.
// Its deadline leaves room for a wait for the worker's concurrency and one
// attempt after it; a delivery that cannot start in time is handed off.
func newBundleTask(pls []*payload, p *Partner, queue string) (*asynq.Task, error) {
	b, err := encodeBundle(pls)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeDeliverBundle, b,
		asynq.Queue(queue),
		asynq.MaxRetry(taskMaxRetry),
		asynq.Timeout(2*partnerTimeout(p)+taskTimeoutSlack+startSlack),
	), nil
}

// startSlack is what a delivery that starts late keeps, beyond its
// partner's timeout, before its task's deadline: for its reads, the gate,
// and its outcome write.
const startSlack = 10 * time.Second

// startDeadline is ctx with the deadline by which a delivery to a partner
// with timeout must start (a slot wait ends there): the task's deadline
// less timeout and startSlack.
func startDeadline(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, dl.Add(-timeout-startSlack))
}

func partnerTimeout(p *Partner) time.Duration {
	if p == nil || p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
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
	pls, err := decodeBundle(t.Payload())
	if err != nil {
		return undecodable(err)
	}
	if h.queue == nil {
		return retry.Defer(time.Minute, errNoQueue)
	}
	queue := cmp.Or(taskQueue(ctx), QueueDefault)
	// A delivery that has not started by then waits for its own task
	// instead, so that the ones that start have their whole timeout.
	p := h.live.Load().Partner(pls[0].Partner)
	startBy, cancel := startDeadline(ctx, partnerTimeout(p))
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
	for _, pl := range pls {
		wg.Go(func() {
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
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		return retry.Defer(time.Second, fmt.Errorf("%d of %d deliveries not handed to their own tasks: %w", len(failed), len(pls), failed[0]))
	}
	return nil
}

// errNoQueue: a bundle cannot run on a handler that cannot hand off.
var errNoQueue = errors.New("dispatcher: the handler has no queue to hand a bundle's deliveries off to (HandlerConfig.Queue)")

// bundled runs one delivery of a bundle: a turn under the partner's
// concurrency cap (turns, nil for none) and one of the handler's slots,
// both until startBy, then deliver. A panic becomes a deferral of that delivery, handed to its own
// task (where asynq's recovery applies), rather than the worker's end: the
// deliveries run on goroutines of their own.
func (h *Handler) bundled(ctx, startBy context.Context, turns chan struct{}, pl *payload, queue string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("panic in a delivery", "delivery", pl.Delivery, "partner", pl.Partner, "panic", fmt.Sprint(r))
			err = retry.Defer(time.Second, fmt.Errorf("panic: %v", r))
		}
	}()
	turn, err := h.take(startBy, turns, "turn under the partner's concurrency")
	if err != nil {
		return retry.Defer(0, err)
	}
	defer turn()
	release, err := h.take(startBy, h.slots, "free concurrency slot")
	if err != nil {
		return retry.Defer(0, err)
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
func (h *Handler) handOff(ctx context.Context, pl *payload, queue string, delay time.Duration) error {
	task, err := newTask(pl, h.live.Load().Partner(pl.Partner), queue)
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

// TaskDeliveries returns the ids of the deliveries an asynq task of
// postback's carries: one for a delivery task, several for a bundle, to
// see into queued tasks with asynq's Inspector.
func TaskDeliveries(taskType string, payload []byte) ([]string, error) {
	switch taskType {
	case TypeDeliver:
		pl, err := decodePayload(payload)
		if err != nil {
			return nil, err
		}
		return []string{pl.Delivery}, nil
	case TypeDeliverBundle:
		pls, err := decodeBundle(payload)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(pls))
		for i, pl := range pls {
			ids[i] = pl.Delivery
		}
		return ids, nil
	}
	return nil, fmt.Errorf("task type %q is not postback's", taskType)
}

// taskHead reads a postback task's partner, first-enqueued time and number
// of deliveries without decoding its events.
func taskHead(taskType string, b []byte) (partner string, enqueued int64, n int, ok bool) {
	if taskType != TypeDeliverBundle {
		partner, enqueued, ok = payloadHead(b)
		return partner, enqueued, 1, ok
	}
	raws, err := splitBundle(b)
	if err != nil {
		return "", 0, 0, false
	}
	// The first delivery's: all share the partner, and were enqueued together.
	partner, enqueued, ok = payloadHead(raws[0])
	return partner, enqueued, len(raws), ok
}
