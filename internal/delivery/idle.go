package delivery

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/store"
)

// scaler runs all but the first of a worker's asynq processors only while
// there is work, so that an idle worker polls Redis with one processor,
// slowly, instead of with every processor at PollInterval.
//
// asynq polls: a processor that finds its queues empty sleeps
// TaskCheckInterval, and nothing can cut that sleep short. So the worker
// keeps one server (the lead) polling every IdlePollInterval, and starts
// one more, polling every PollInterval as before, when it is woken: by a
// wake-up that intake publishes when it stores deliveries (a fresh asynq
// server's processor looks at the queues at once), or by a task that the
// lead took (a retry that came due, a task enqueued by anything that does
// not publish). The rest start once the worker is busy (the tasks in
// flight fill half the slots of those two, or start at 500 a second): a
// trickle of events keeps two processors polling, not all of them. The
// rest stop once the worker has not been busy for IdleAfter; the second
// stops once no task is in flight and none has started for IdleAfter. An asynq server cannot be started twice, so each wake builds
// new ones.
//
// Nothing depends on a wake-up arriving: the lead finds every task on its
// own, within IdlePollInterval and a half. Under load every processor is
// running and busy, as without the scaler.
type scaler struct {
	rdb       redis.UniversalClient
	newServer func(i, share int) *asynq.Server
	shares    []int // the concurrency of each server started on wake
	busyAt    int64 // tasks in flight from which the rest start
	mux       asynq.Handler
	idleAfter time.Duration
	hold      func() bool // while true, no server stops
	log       *slog.Logger

	inflight atomic.Int64
	last     atomic.Int64 // Unix nanoseconds of the last task started or wake-up
	lastBusy atomic.Int64 // Unix nanoseconds when the worker was last busy
	winStart atomic.Int64 // Unix nanoseconds: the start of the window of winCount
	winCount atomic.Int64 // tasks started since winStart
	kick     chan struct{}
	// level is how many tiers run: 0 the lead alone, 1 with the first
	// server, 2 with all; read by taskStarted.
	level atomic.Int32

	mu      sync.Mutex
	first   *asynq.Server
	rest    []*asynq.Server
	restAt  <-chan time.Time // when to start the rest
	firstAt time.Time        // when the first server started
	closing sync.WaitGroup   // servers being shut down

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type scalerParams struct {
	Redis redis.UniversalClient
	// NewServer builds the server of Shares[i].
	NewServer func(i, share int) *asynq.Server
	// LeadShare is the lead's concurrency; Shares the others'.
	LeadShare int
	Shares    []int
	IdleAfter time.Duration
	// Hold, while it reports true, keeps every running server running:
	// during a Redis outage tasks neither start nor end, which is not
	// idleness, and a server shut down then cannot give its tasks back.
	Hold   func() bool
	Logger *slog.Logger
}

func newScaler(p scalerParams) *scaler {
	if p.Hold == nil {
		p.Hold = func() bool { return false }
	}
	return &scaler{rdb: p.Redis, newServer: p.NewServer, shares: p.Shares, busyAt: int64(max(1, (p.LeadShare+p.Shares[0])/2)),
		idleAfter: p.IdleAfter, hold: p.Hold, log: p.Logger, kick: make(chan struct{}, 1), stop: make(chan struct{})}
}

// The worker is busy when the tasks in flight reach busyAt, or when
// tasks start at busyStarts per busyWindow (500 a second) or faster: quick
// tasks may never fill the slots, while the two processors spend their
// time on one Redis round trip per task and a backlog waits.
const (
	busyWindow = 100 * time.Millisecond
	busyStarts = 50
)

// taskStarted notes a task starting on any of the worker's servers, and
// kicks the scaler when a tier should start.
func (s *scaler) taskStarted() {
	now := time.Now().UnixNano()
	s.last.Store(now)
	if ws := s.winStart.Load(); now-ws > int64(busyWindow) && s.winStart.CompareAndSwap(ws, now) {
		s.winCount.Store(0)
	}
	fast := s.winCount.Add(1) >= busyStarts
	busy := s.inflight.Add(1) >= s.busyAt || fast
	if busy {
		s.lastBusy.Store(now)
	}
	if l := s.level.Load(); l == 0 || l == 1 && busy && len(s.shares) > 1 {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// taskDone notes a task ending.
func (s *scaler) taskDone() { s.inflight.Add(-1) }

func (s *scaler) start(mux asynq.Handler) {
	s.mux = mux
	sub := store.SubscribeWake(context.Background(), s.rdb)
	wakes := sub.Channel()
	s.wg.Go(func() {
		defer func() { _ = sub.Close() }()
		t := time.NewTicker(max(s.idleAfter/4, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case _, ok := <-wakes:
				if !ok {
					return
				}
				s.wake()
			case <-s.kick:
				s.wake()
			case <-s.restAt:
				s.startRest()
			case now := <-t.C:
				s.settle(now)
			}
		}
	})
}

// wakeStagger is the least time between the first server's start and
// the others'. A fresh asynq server writes its state, subscribes and
// looks for lost tasks as it starts, and its processor hands its first
// task to the heartbeater only once that first write is done: fifteen
// starting at once share the Redis connections and the CPU, and measured
// 10 to 25 ms before the first task ran, against about 1 ms for one.
const wakeStagger = 20 * time.Millisecond

// wake starts the first server unless it runs, and the rest (no sooner
// than wakeStagger after it) when the worker is busy.
func (s *scaler) wake() {
	s.last.Store(time.Now().UnixNano())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		if s.first = s.startServer(0, s.shares[0]); s.first == nil {
			return // the next wake-up or task tries again
		}
		s.firstAt = time.Now()
		s.level.Store(1)
		s.log.Debug("worker awake")
	}
	busy := s.inflight.Load() >= s.busyAt || time.Since(time.Unix(0, s.lastBusy.Load())) < busyWindow
	if s.rest == nil && s.restAt == nil && len(s.shares) > 1 && busy {
		s.restAt = time.After(max(0, wakeStagger-time.Since(s.firstAt)))
	}
}

// startRest starts the servers after the first, if it still runs.
func (s *scaler) startRest() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restAt = nil
	if s.first == nil || s.rest != nil {
		return
	}
	for i, share := range s.shares[1:] {
		if srv := s.startServer(i+1, share); srv != nil {
			s.rest = append(s.rest, srv)
		}
	}
	s.level.Store(2)
}

// startServer starts one server; nil when it could not.
func (s *scaler) startServer(i, share int) *asynq.Server {
	srv := s.newServer(i, share)
	if err := srv.Start(s.mux); err != nil {
		// The lead still runs every task, only with fewer slots.
		s.log.Warn("worker: could not start an asynq processor", "err", err)
		return nil
	}
	return srv
}

// settle stops the rest once the worker has not been busy for IdleAfter,
// and the first once no task is in flight and none has started for
// IdleAfter. Stopped servers shut down in the background: each lets its
// tasks in flight finish (asynq's graceful shutdown) while the others go
// on.
func (s *scaler) settle(now time.Time) {
	if s.hold() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idle := now.Sub(time.Unix(0, s.last.Load())) >= s.idleAfter && s.inflight.Load() == 0
	calm := now.Sub(time.Unix(0, s.lastBusy.Load())) >= s.idleAfter
	if (idle || calm) && s.restAt == nil {
		for _, srv := range s.rest {
			s.closing.Go(srv.Shutdown)
		}
		if s.rest != nil {
			s.rest = nil
			s.level.Store(1)
		}
	}
	if idle && s.first != nil && s.rest == nil && s.restAt == nil {
		s.closing.Go(s.first.Shutdown)
		s.first = nil
		s.level.Store(0)
		s.log.Debug("worker idle")
	}
}

// awake reports whether any server besides the lead runs.
func (s *scaler) awake() bool { return s.level.Load() > 0 }

// shutdown stops waking and shuts every server down, waiting for their
// tasks in flight.
func (s *scaler) shutdown() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	s.mu.Lock()
	for _, srv := range append(s.rest, s.first) {
		if srv != nil {
			s.closing.Go(srv.Shutdown) // at once: each waits up to ShutdownTimeout
		}
	}
	s.first, s.rest, s.restAt = nil, nil, nil
	s.level.Store(0)
	s.mu.Unlock()
	s.closing.Wait()
}
