package intake

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/store"
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
func (c *Client) enqueueAll(ctx context.Context, ins []*incoming) []error {
	errs := make([]error, len(ins))
	var claims []store.Claim
	var claimErrs []error
	var early []error // of storing the tasks along with the claim
	if c.pipe != nil && len(ins) == 1 && !c.checksPrevious() {
		in := ins[0]
		octx := store.InOrder(ctx, in.ev.ID)
		cmd := c.store.NewClaimCmd(octx, in.ev.ID, in.claim, in.cfg.API.DedupWindow)
		wait := c.pipe.Send(octx, cmd)
		early = c.storeAll(ctx, ins, func(r config.Route) bool { return r.Skip == "" })
		wait()
		claim, err := store.ClaimResult(cmd)
		claims, claimErrs = []store.Claim{claim}, []error{err}
	} else {
		reqs := make([]store.EventClaim, len(ins))
		for j, in := range ins {
			reqs[j] = store.EventClaim{ID: in.ev.ID, Deliveries: in.claim}
		}
		claims, claimErrs = c.store.ClaimEvents(ctx, reqs, ins[0].cfg.API.DedupWindow)
		c.previousClaims(ctx, ins, claims, claimErrs)
	}

	// What is left to store, after the claims' answers.
	rest := make([]*incoming, len(ins)) // nil: nothing left
	var dups []*incoming
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
	later := c.storeAll(ctx, rest, func(config.Route) bool { return true })
	var stored []string // ids of the events to answer as stored
	for j, in := range ins {
		if rest[j] != nil && later[j] != nil {
			errs[j] = later[j]
		}
		if errs[j] == nil {
			stored = append(stored, in.ev.ID)
		}
	}
	if len(stored) > 0 {
		c.wake.wake()
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
func skipped(routes []config.Route) []config.Route {
	out := routes[:0]
	for _, r := range routes {
		if r.Skip != "" {
			out = append(out, r)
		}
	}
	return out
}

// bundled is one delivery of a batch: route r of intake in.
type bundled struct {
	in int
	r  config.Route
}

// storeAll stores the routes that keep selects of every non-nil intake,
// BatchConcurrency at a time (they leave together in pipelines on a single
// server), and returns the first error of each intake.
//
// The tasks of new events to the same partner share bundle tasks of up to
// BundleSize deliveries. A duplicate's deliveries get their own tasks:
// their task ids conflict with any still queued from the first call, so a
// repeat does not queue a delivery twice.
func (c *Client) storeAll(ctx context.Context, ins []*incoming, keep func(config.Route) bool) []error {
	var units [][]bundled        // each stored in one write: a task, a bundle or a skip record
	bundles := map[unitKey]int{} // partner and shard → its open bundle in units
	for j, in := range ins {
		if in == nil {
			continue
		}
		for _, r := range in.routes {
			if !keep(r) {
				continue
			}
			it := bundled{j, r}
			if r.Skip != "" || in.rc.Duplicate || c.cfg.BundleSize < 2 {
				units = append(units, []bundled{it})
				continue
			}
			key := unitKey{r.Partner.ID, c.shardOf(in, r).Index()}
			u, ok := bundles[key]
			if !ok || len(units[u]) == c.cfg.BundleSize {
				u = len(units)
				bundles[key] = u
				units = append(units, make([]bundled, 0, c.cfg.BundleSize))
			}
			units[u] = append(units[u], it)
		}
	}
	errs := make([]error, len(ins))
	if len(units) == 0 {
		return errs
	}
	store := func(u []bundled) error {
		if len(u) == 1 {
			return c.storeRoute(ctx, ins[u[0].in], u[0].r)
		}
		return c.storeBundle(ctx, ins, u)
	}
	unitErrs := make([]error, len(units))
	if len(units) == 1 {
		unitErrs[0] = store(units[0])
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(c.cfg.BatchConcurrency, len(units)) {
			wg.Go(func() {
				for {
					k := int(next.Add(1)) - 1
					if k >= len(units) {
						return
					}
					unitErrs[k] = store(units[k])
				}
			})
		}
		wg.Wait()
	}
	for k, u := range units {
		for _, it := range u {
			if unitErrs[k] != nil && errs[it.in] == nil {
				errs[it.in] = unitErrs[k]
			}
		}
	}
	return errs
}
