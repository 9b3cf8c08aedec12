package delivery

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/postbackhq/postback/internal/store"
)

// recoverer puts back into their queue the tasks that a processor took
// and then lost, so that they run again within seconds of Redis coming
// back rather than a minute or more.
//
// When Redis freezes (paused, failing over, swapping) while deliveries
// are in flight, asynq's writes that end a task (done, retry) fail, and so
// do its lease extensions: the task stays in asynq's active list with its
// lease expired. asynq's own recoverer returns such tasks to the queue
// only once their lease has been expired for 30 s, and looks once a
// minute, so a freeze of half a minute delayed deliveries by up to 80 s.
// This loop looks every second, for leases expired more than grace ago.
// Nothing is lost either way, and a task run again after its lost
// outcome finds its delivery's record (final: nothing is sent twice) or
// its per-delivery lease (deferred until the first attempt's ends).
type recoverer struct {
	store    *store.Store
	queues   []string
	interval time.Duration
	grace    time.Duration
	log      *slog.Logger

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type recovererParams struct {
	Store    *store.Store
	Queues   []string
	Interval time.Duration // how often it looks
	Grace    time.Duration // how long past its lease a task is left alone
	Logger   *slog.Logger
}

func newRecoverer(p recovererParams) *recoverer {
	return &recoverer{store: p.Store, queues: p.Queues, interval: p.Interval, grace: p.Grace, log: p.Logger, stop: make(chan struct{})}
}

// recoverBatch is the most tasks one look moves per queue; a larger
// backlog moves on the next looks.
const recoverBatch = 500

func (r *recoverer) start() {
	r.wg.Go(func() {
		t := time.NewTicker(r.interval)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), r.interval)
			for _, q := range r.queues {
				n, err := r.store.RequeueExpired(ctx, q, r.grace, recoverBatch)
				switch {
				case err != nil && !failing:
					// Redis is failing; asynq logs its own errors. Once.
					r.log.Debug("lost tasks not recovered", "queue", q, "err", err)
					failing = true
				case err == nil:
					failing = false
					if n > 0 {
						r.log.Info("tasks whose worker lost them put back in the queue", "queue", q, "tasks", n)
					}
				}
			}
			cancel()
		}
	})
}

func (r *recoverer) shutdown() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.wg.Wait()
}
