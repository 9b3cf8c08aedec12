package dispatcher

import (
	"context"
	"sync"
	"sync/atomic"
)

// MaxBatch is the most events one batch may carry.
const MaxBatch = 1000

// BatchResult is what EnqueueBatch says about one event.
type BatchResult struct {
	// Receipt is set when the event was stored (Receipt.Duplicate tells a
	// duplicate).
	Receipt *Receipt
	// Err is set when it was not: a *FieldError for an invalid event, an
	// error wrapping ErrUnavailable when Redis failed.
	Err error
}

// EnqueueBatch enqueues evs as Enqueue would, ClientConfig.BatchConcurrency
// events at a time, and returns one result per event: results[i] is about
// evs[i]. Events are independent: an invalid one does not stop the others,
// and repeating the whole batch after an ErrUnavailable result is safe, as
// the events already stored come back as duplicates.
func (c *Client) EnqueueBatch(ctx context.Context, evs []*Event) []BatchResult {
	results := make([]BatchResult, len(evs))
	workers := min(c.cfg.BatchConcurrency, len(evs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(evs) {
					return
				}
				if evs[i] == nil {
					results[i].Err = &FieldError{Message: "no event"}
					continue
				}
				results[i].Receipt, results[i].Err = c.Enqueue(ctx, evs[i])
			}
		})
	}
	wg.Wait()
	return results
}
