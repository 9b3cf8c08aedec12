package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postbackhq/postback/internal/store"
)

// ErrPartnerPaused defers a delivery while its partner is paused
// (`postback partners pause`): it spends no attempt, and max_age does not
// run while the partner is paused.
var ErrPartnerPaused = errors.New("partner paused")

// Pauses is a worker's copy of the partners' pauses, so that an attempt
// learns whether its partner is paused without a Redis read. The zero
// value, and nil, hold no pauses.
type Pauses struct {
	cur atomic.Pointer[map[string]store.PartnerPause]
}

// Set replaces the copy with m (from store.Paused).
func (p *Pauses) Set(m map[string]store.PartnerPause) { p.cur.Store(&m) }

// Of returns what is known of partner's pauses.
func (p *Pauses) Of(partner string) store.PartnerPause {
	if p == nil {
		return store.PartnerPause{}
	}
	m := p.cur.Load()
	if m == nil {
		return store.PartnerPause{}
	}
	return (*m)[partner]
}

// pauseWatch refreshes a Pauses from Redis every interval, so that a pause
// or a resume reaches every worker within about that long.
type pauseWatch struct {
	store    *store.Store
	into     *Pauses
	interval time.Duration
	log      *slog.Logger

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	failing  bool // the last refresh failed: log only the first failure
}

type pauseWatchParams struct {
	Store    *store.Store
	Into     *Pauses
	Interval time.Duration
	Logger   *slog.Logger
}

func newPauseWatch(p pauseWatchParams) *pauseWatch {
	return &pauseWatch{store: p.Store, into: p.Into, interval: p.Interval, log: p.Logger, stop: make(chan struct{})}
}

// start reads the pauses once before it returns, so that a worker started
// while a partner is paused holds its deliveries from the first one.
func (w *pauseWatch) start() {
	w.refresh()
	w.wg.Go(func() {
		t := time.NewTicker(w.interval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.refresh()
			}
		}
	})
}

func (w *pauseWatch) shutdown() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

// refresh reads the pauses; when Redis fails, the last copy stays.
func (w *pauseWatch) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), max(w.interval, time.Second))
	defer cancel()
	m, err := w.store.Paused(ctx)
	if err != nil {
		if !w.failing {
			w.log.Warn("partner pauses not refreshed; the last ones read stay in force", "err", err)
		}
		w.failing = true
		return
	}
	w.failing = false
	w.into.Set(m)
}
