package dispatcher

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/postbackhq/postback/dispatcher/store"
)

// enqueueAll stores prepared events and returns, for each, nil or why it
// was not accepted.
//
// For a single event on a single server (c.pipe set) the claim is queued
// first and the tasks right behind it, under the event's ordering key, so
// that one flusher sends them in that order, in the same round trip. A task
// thus goes out before its claim's answer is known:
//
//   - For a new event that is what was wanted.
//   - For a repeat whose first tasks are still queued, the enqueue
//     conflicts on the task id and changes nothing. One whose first task
//     has run gets a new task that finds its delivery final and sends
//     nothing.
//   - For a repeat routed differently from the first call (its attribution
//     changed, say), a task may go to a partner the first receipt did not
//     promise. The worker reads the event's claim along with the delivery
//     record before a first attempt, and drops such a task (see
//     Handler.ProcessTask).
//
// Skip records wait for the claim's answer, since a repeat must not mark
// skipped a delivery the first call queued.
//
// A batch's claims go first instead, all in one pipeline, and everything
// else after their answer: the one round trip is shared by every event of
// the batch, and measured faster than claims and tasks interleaved. So do
// single events without c.pipe (Redis Cluster, or NoAutoPipeline), where
// nothing orders a claim before its tasks.
func (c *Client) enqueueAll(ctx context.Context, ins []*intake) []error {
	errs := make([]error, len(ins))
	var claims []store.Claim
	var claimErrs []error
	var early []error // of storing the tasks along with the claim
	if c.pipe != nil && len(ins) == 1 {
		in := ins[0]
		octx := inOrder(ctx, in.ev.ID)
		cmd := store.NewClaimCmd(octx, in.ev.ID, in.claim, in.cfg.API.DedupWindow)
		wait := c.pipe.send(octx, cmd)
		early = c.storeAll(ctx, ins, func(r Route) bool { return r.Skip == "" })
		wait()
		claim, err := store.ClaimResult(cmd)
		claims, claimErrs = []store.Claim{claim}, []error{err}
	} else {
		reqs := make([]store.EventClaim, len(ins))
		for j, in := range ins {
			reqs[j] = store.EventClaim{ID: in.ev.ID, Deliveries: in.claim}
		}
		claims, claimErrs = c.store.ClaimEvents(ctx, reqs, ins[0].cfg.API.DedupWindow)
	}

	// What is left to store, after the claims' answers.
	rest := make([]*intake, len(ins)) // nil: nothing left
	var dups []*intake
	for j, in := range ins {
		if err := claimErrs[j]; err != nil {
			errs[j] = fmt.Errorf("%w: %v", ErrUnavailable, err)
			continue
		}
		if err := in.decide(claims[j]); err != nil {
			errs[j] = err
			continue
		}
		switch {
		case in.rc.Duplicate:
			dups = append(dups, in)
			rest[j] = in
		case early != nil && early[j] != nil:
			// The claim is stored and some task is not: the caller's
			// repeat stores the missing ones as a duplicate would.
			errs[j] = early[j]
		case early != nil:
			in.routes = skipped(in.routes)
			if len(in.routes) > 0 {
				rest[j] = in
			}
		default:
			rest[j] = in
		}
	}
	if err := c.dropRecorded(ctx, dups); err != nil {
		for j, in := range rest {
			if in != nil && in.rc.Duplicate {
				errs[j], rest[j] = err, nil
			}
		}
	}
	later := c.storeAll(ctx, rest, func(Route) bool { return true })
	var stored []string // ids of the events to answer as stored
	for j, in := range ins {
		if rest[j] != nil && later[j] != nil {
			errs[j] = later[j]
		}
		if errs[j] == nil {
			stored = append(stored, in.ev.ID)
		}
	}
	// With api.wait_replicas, none is answered before replicas have it.
	if err := c.replicated(ctx, ins[0].cfg, stored...); err != nil {
		for j := range errs {
			if errs[j] == nil {
				errs[j] = err
			}
		}
	}
	return errs
}

// skipped keeps the routes that are skipped.
func skipped(routes []Route) []Route {
	out := routes[:0]
	for _, r := range routes {
		if r.Skip != "" {
			out = append(out, r)
		}
	}
	return out
}

// storeAll stores the routes that keep selects of every non-nil intake,
// BatchConcurrency at a time (they leave together in pipelines on a single
// server), and returns the first error of each intake.
func (c *Client) storeAll(ctx context.Context, ins []*intake, keep func(Route) bool) []error {
	type item struct {
		in int
		r  Route
	}
	var items []item
	for j, in := range ins {
		if in == nil {
			continue
		}
		for _, r := range in.routes {
			if keep(r) {
				items = append(items, item{j, r})
			}
		}
	}
	errs := make([]error, len(ins))
	if len(items) == 0 {
		return errs
	}
	itemErrs := make([]error, len(items))
	if len(items) == 1 {
		itemErrs[0] = c.storeRoute(ctx, ins[items[0].in], items[0].r)
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(c.cfg.BatchConcurrency, len(items)) {
			wg.Go(func() {
				for {
					k := int(next.Add(1)) - 1
					if k >= len(items) {
						return
					}
					itemErrs[k] = c.storeRoute(ctx, ins[items[k].in], items[k].r)
				}
			})
		}
		wg.Wait()
	}
	for k, it := range items {
		if itemErrs[k] != nil && errs[it.in] == nil {
			errs[it.in] = itemErrs[k]
		}
	}
	return errs
}
