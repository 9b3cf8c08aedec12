package intake

import (
	"context"

	"github.com/postbackhq/postback/internal/event"
)

// MaxBatch is the most events one batch may carry.
const MaxBatch = 1000

// BatchResult is what EnqueueBatch says about one event.
type BatchResult struct {
	// Receipt is set when the event was stored (Receipt.Duplicate tells a
	// duplicate; Receipt.Warnings names the fields dropped from it).
	Receipt *Receipt
	// Err is set when it was not: a *FieldError for an invalid event, an
	// error wrapping ErrUnavailable when Redis failed.
	Err error
}

// EnqueueBatch enqueues evs as Enqueue would, and returns one result per
// event: results[i] is about evs[i]. Events are independent: an invalid one
// does not stop the others, and repeating the whole batch after an
// ErrUnavailable result is safe, as the events already stored come back as
// duplicates.
//
// The whole batch takes one round trip to Redis on a single server, however
// many events it holds: every claim, then every task, BatchConcurrency at a
// time, leave together in pipelines. Skip records, and the deliveries of
// events seen before, take one or two more. See Enqueue.
func (c *Client) EnqueueBatch(ctx context.Context, evs []*event.Event) []BatchResult {
	results := make([]BatchResult, len(evs))
	cfg := c.cfg.Config.Load()
	ins := make([]*incoming, 0, len(evs))
	at := make([]int, 0, len(evs)) // ins[j] is about evs[at[j]]
	for i, ev := range evs {
		if ev == nil {
			results[i].Err = &event.FieldError{Message: "no event"}
			continue
		}
		in, err := c.prepare(ev, cfg)
		if err != nil {
			results[i].Err = err
			c.refusedSpan(ctx, err)
			continue
		}
		ins, at = append(ins, in), append(at, i)
	}
	if len(ins) == 0 {
		return results
	}

	spans := c.intakeSpans(ctx, ins)
	errs := c.enqueueAll(ctx, ins)
	endIntakes(spans, ins, errs)
	for j, in := range ins {
		if errs[j] != nil {
			results[at[j]].Err = errs[j]
			continue
		}
		results[at[j]].Receipt = in.rc
	}
	return results
}
