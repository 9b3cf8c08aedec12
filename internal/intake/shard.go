package intake

import (
	"context"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/templates"
)

// Placement of deliveries among redis.shards. A delivery lives wholly in
// one shard, named by the queue its task is in; the worker reads that
// shard's keys. The shard is derived, never stored, so that a repeat of
// the event finds the first call's records and tasks:
//
//   - By default, the event id's shard, where the event's claim is: an
//     event's claim and its deliveries share one slot, and the read before
//     an attempt stays one script.
//   - A partner with order_by: the shard of the partner and the ordering
//     value, where the sequence is, so that one click's (or transaction's)
//     deliveries meet in it; with cancel_on_reject, the transaction id's,
//     where its held set is, so that the original and the rejection meet.
//   - A partner whose rule spans any of its deliveries (dedup, whose
//     ledger may name any delivery of the partner; order_by click_id with
//     cancel_on_reject, two values at once): the partner's shard.

// placement is the shard of delivery r of ev among n shards.
func placement(r config.Route, ev *event.Event, n int) int {
	if n <= 1 {
		return 0
	}
	p := r.Partner
	if p.Dedup != nil || (p.CancelOnReject && p.OrderBy == templates.FieldClickID) {
		return wire.ShardOf(p.ID, n)
	}
	if v := orderValue(p, ev); v != "" {
		return wire.ShardOf(p.ID+"\x00"+v, n)
	}
	if p.CancelOnReject && ev.TransactionID != "" {
		return wire.ShardOf(p.ID+"\x00"+ev.TransactionID, n)
	}
	return wire.ShardOf(ev.ID, n)
}

// shardOf is the store of delivery r of in's shard.
func (c *Client) shardOf(in *incoming, r config.Route) *store.Store {
	n := c.store.Placed()
	if in.shards > 0 {
		n = in.shards
	}
	if n == 1 {
		return c.store
	}
	return c.store.Shard(placement(r, in.ev, n))
}

// checksPrevious says whether intake looks for claims of the layout
// before redis.shards changed (redis.previous_shards): then an event's
// claim goes first, the rest after its answer (see previousClaims).
func (c *Client) checksPrevious() bool { return c.previous > 0 }

// previousClaims finds, after a change of redis.shards, the claims of
// events accepted before it, which the layout then in force wrote
// (store.ClaimKeyIn), in one round trip for all of ins. An event found
// there is a repeat of one accepted before the change: claims[j] becomes
// that first call's claim, its deliveries are placed as they were then
// (where their records, tasks and sequences are). Without this, such a
// repeat would be stored and sent again. errs[j] is set when the read
// failed.
func (c *Client) previousClaims(ctx context.Context, ins []*incoming, claims []store.Claim, errs []error) {
	if c.previous == 0 {
		return
	}
	var at []int
	var ids []string
	for j, in := range ins {
		if errs[j] == nil {
			at, ids = append(at, j), append(ids, in.ev.ID)
		}
	}
	if len(at) == 0 {
		return
	}
	old, err := c.store.ClaimsIn(ctx, ids, c.previous)
	if err != nil {
		for _, j := range at {
			errs[j] = err
		}
		return
	}
	for i, j := range at {
		if old[i] != nil {
			// The claim this call may have made stays: it holds the event
			// for the replicas' check, and while the first call's claim
			// lives, a repeat finds that one first.
			ins[j].shards, claims[j] = c.previous, store.Claim{Deliveries: old[i]}
		}
	}
}

// unitKey groups a batch's deliveries into bundles: one partner's in one
// shard.
type unitKey struct {
	partner string
	shard   int
}
