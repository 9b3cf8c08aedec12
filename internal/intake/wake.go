package intake

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/postbackhq/postback/internal/store"
)

// wakeEvery is the least time between two wake-ups one Client publishes.
// A worker that was woken stays awake for seconds after its last task
// (delivery.WorkerConfig.IdleAfter), so one wake-up covers every event
// stored within wakeEvery of it; under load that is ten PUBLISHes a
// second, whatever the rate.
const wakeEvery = 100 * time.Millisecond

// wakeTimeout bounds one PUBLISH: a wake-up is a hint, never waited for.
const wakeTimeout = time.Second

// waker tells idle workers that deliveries were stored (see
// store.WakeChannel), at most once per wakeEvery.
type waker struct {
	store *store.Store
	now   func() time.Time
	last  atomic.Int64 // Unix nanoseconds of the last wake-up sent
}

// wake publishes a wake-up in the background, unless one left less than
// wakeEvery ago. The event is stored already: its answer never waits.
func (w *waker) wake() {
	now := w.now().UnixNano()
	last := w.last.Load()
	if now-last < int64(wakeEvery) || !w.last.CompareAndSwap(last, now) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
		defer cancel()
		// A lost wake-up costs latency only: idle workers still poll.
		_ = w.store.Wake(ctx)
	}()
}
