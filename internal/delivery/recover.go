package delivery

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
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
//
// That is not enough on its own: a lease extension that asynq sent as
// Redis froze is applied when Redis comes back, so the lease of a task
// whose completion was lost runs on for half a minute more. So the
// recoverer also notices the outage (its own looks fail) and, a few
// seconds after Redis answers again, puts back the tasks this worker's
// handlers returned from around the outage that asynq still holds as
// active: their completion was never written.
// Nothing is lost either way, and a task run again after its lost
// outcome finds its delivery's record (final: nothing is sent twice) or
// its per-delivery lease (deferred until the first attempt's ends).
type recoverer struct {
	store    *store.Store
	queues   []string
	interval time.Duration
	grace    time.Duration
	log      *slog.Logger
	finished *finishedLog

	// outage is set from a look that failed until the tasks lost in the
	// outage are checked (see inOutage).
	outage atomic.Bool

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// inOutage reports whether Redis is failing, or came back too recently
// for the tasks lost meanwhile to have been put back.
func (r *recoverer) inOutage() bool { return r.outage.Load() }

type recovererParams struct {
	Finished *finishedLog
	Store    *store.Store
	Queues   []string
	Interval time.Duration // how often it looks
	Grace    time.Duration // how long past its lease a task is left alone
	Logger   *slog.Logger
}

func newRecoverer(p recovererParams) *recoverer {
	return &recoverer{store: p.Store, queues: p.Queues, interval: p.Interval, grace: p.Grace, log: p.Logger,
		finished: p.Finished, stop: make(chan struct{})}
}

// recoverBatch is the most tasks one look moves per queue; a larger
// backlog moves on the next looks.
const recoverBatch = 500

// Around an outage: the tasks whose handlers returned from lostBefore
// before the first failed look to lostSettle after the first look that
// worked (a handler held up on a write of its own returns once Redis
// answers) are checked lostSettle later, once asynq's writes held up in
// go-redis have had time to land.
const (
	lostBefore = 10 * time.Second
	lostSettle = 3 * time.Second
)

func (r *recoverer) start() {
	r.wg.Go(func() {
		t := time.NewTicker(r.interval)
		defer t.Stop()
		var failedAt, checkAt, from, to time.Time
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			now := time.Now()
			ok := r.look()
			switch {
			case !ok && failedAt.IsZero():
				failedAt = now
				r.outage.Store(true)
			case ok && !failedAt.IsZero():
				// Back after an outage: look at its tasks soon.
				from, to, checkAt = failedAt.Add(-lostBefore), now.Add(lostSettle), now.Add(2*lostSettle)
				failedAt = time.Time{}
			}
			if ok && !checkAt.IsZero() && !now.Before(checkAt) {
				r.requeueLost(from, to)
				checkAt = time.Time{}
				r.outage.Store(false)
			}
		}
	})
}

// look puts back the tasks whose lease expired; false when Redis failed.
func (r *recoverer) look() bool {
	ctx, cancel := context.WithTimeout(context.Background(), r.interval)
	defer cancel()
	for _, q := range r.queues {
		n, err := r.store.RequeueExpired(ctx, q, r.grace, recoverBatch)
		if err != nil {
			r.log.Debug("lost tasks not recovered", "queue", q, "err", err)
			return false
		}
		if n > 0 {
			r.log.Info("tasks whose lease ran out put back in the queue", "queue", q, "tasks", n)
		}
	}
	return true
}

// requeueLost puts back the tasks this worker's handlers returned from
// between from and to that asynq still holds as active.
func (r *recoverer) requeueLost(from, to time.Time) {
	if r.finished == nil {
		return
	}
	for q, ids := range r.finished.between(from, to) {
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), recoverBatch)]
			ids = ids[len(chunk):]
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			n, err := r.store.RequeueLost(ctx, q, chunk)
			cancel()
			if err != nil {
				r.log.Warn("tasks lost in the outage not checked; asynq's recoverer will take them", "queue", q, "err", err)
				break
			}
			if n > 0 {
				r.log.Info("tasks whose completion was lost in the outage put back in the queue", "queue", q, "tasks", n)
			}
		}
	}
}

func (r *recoverer) shutdown() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.wg.Wait()
}

// finishedLog remembers which tasks the worker's handlers returned from,
// and when, for a short while: at most finishedMax of them, the newest.
type finishedLog struct {
	mu      sync.Mutex
	entries []finishedTask // oldest first, from start on
	start   int
}

type finishedTask struct {
	queue, id string
	at        time.Time
}

// finishedMax bounds the log: some seconds of tasks at full speed, and
// every task of an outage, when few finish.
const finishedMax = 50_000

func (f *finishedLog) add(queue, id string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, finishedTask{queue, id, at})
	if len(f.entries)-f.start > finishedMax {
		f.start++
	}
	if f.start > finishedMax { // compact
		f.entries = append(f.entries[:0], f.entries[f.start:]...)
		f.start = 0
	}
}

// between returns, by queue, the ids of the tasks finished from from to to.
func (f *finishedLog) between(from, to time.Time) map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for _, e := range f.entries[f.start:] {
		if !e.at.Before(from) && !e.at.After(to) {
			out[e.queue] = append(out[e.queue], e.id)
		}
	}
	return out
}
