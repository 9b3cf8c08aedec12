package httpapi

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// failureLogEvery is the least time between two lines of a failureLog.
const failureLogEvery = 10 * time.Second

// failureLog writes intake's failures to store events to the log as a
// summary: the first failure of an outage at once, then a line at most
// every failureLogEvery with the failures since the last one and the
// last error, and a line when events are stored again. A line a failed
// request would bury the log under an outage, and cost it while Redis
// is down.
type failureLog struct {
	logger *slog.Logger
	now    func() time.Time

	down atomic.Bool // a failure has no success after it yet

	mu       sync.Mutex
	since    time.Time // the outage's first failure
	loggedAt time.Time // the last line
	failures int       // of the outage
	unlogged int       // failures since the last line
	lastErr  error
}

// failed records a request whose events Redis did not store.
func (f *failureLog) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if f.failures == 0 {
		f.since = now
	}
	f.failures++
	f.unlogged++
	f.lastErr = err
	f.down.Store(true)
	if f.failures == 1 || now.Sub(f.loggedAt) >= failureLogEvery {
		f.logger.Error("storing events failed", "failures", f.unlogged, "outage", now.Sub(f.since), "err", err)
		f.loggedAt, f.unlogged = now, 0
	}
}

// stored records a request whose events Redis stored (or found stored).
func (f *failureLog) stored() {
	if !f.down.Load() {
		return // no outage: no lock on the hot path
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures == 0 {
		return
	}
	f.logger.Info("storing events works again", "failures", f.failures, "outage", f.now().Sub(f.since), "last_err", f.lastErr)
	f.failures, f.unlogged, f.lastErr = 0, 0, nil
	f.down.Store(false)
}
