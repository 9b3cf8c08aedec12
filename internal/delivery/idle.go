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
// the others, polling every PollInterval as before, when it is woken:
// by a wake-up that intake publishes when it stores deliveries (a fresh
// asynq server's processor looks at the queues at once), or by a task
// that the lead took (a retry that came due, a task enqueued by anything
// that does not publish). It stops them again once no task has started
// for IdleAfter. An asynq server cannot be started twice, so each wake
// builds new ones.
//
// Nothing depends on a wake-up arriving: the lead finds every task on its
// own, within IdlePollInterval and a half. Under load every processor is
// running and busy, as without the scaler.
type scaler struct {
	rdb       redis.UniversalClient
	newServer func(share int) *asynq.Server
	shares    []int // the concurrency of each server started on wake
	mux       asynq.Handler
	idleAfter time.Duration
	log       *slog.Logger

	last atomic.Int64 // Unix nanoseconds of the last task started or wake-up
	kick chan struct{}
	// awake is set while the servers run; read by taskStarted.
	awake atomic.Bool

	mu      sync.Mutex
	running []*asynq.Server
	rest    <-chan time.Time // when to start the servers after the first
	closing sync.WaitGroup   // servers being shut down

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type scalerParams struct {
	Redis     redis.UniversalClient
	NewServer func(share int) *asynq.Server
	Shares    []int
	IdleAfter time.Duration
	Logger    *slog.Logger
}

func newScaler(p scalerParams) *scaler {
	return &scaler{rdb: p.Redis, newServer: p.NewServer, shares: p.Shares, idleAfter: p.IdleAfter, log: p.Logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
}

// taskStarted notes a task starting on any of the worker's servers, and
// wakes the scaler when it was asleep.
func (s *scaler) taskStarted() {
	s.last.Store(time.Now().UnixNano())
	if !s.awake.Load() {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

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
			case <-s.rest:
				s.startRest()
			case now := <-t.C:
				if s.awake.Load() && now.Sub(time.Unix(0, s.last.Load())) >= s.idleAfter {
					s.sleep()
				}
			}
		}
	})
}

// wakeStagger is how long after the first server the others start. A
// fresh asynq server writes its state, subscribes and looks for lost
// tasks as it starts, and its processor hands its first task to the
// heartbeater only once that first write is done: fifteen starting at
// once share the Redis connections and the CPU, and measured 10 to 25 ms
// before the first task ran, against about 1 ms for one alone.
const wakeStagger = 20 * time.Millisecond

// wake starts the first server unless they run, and the others
// wakeStagger later.
func (s *scaler) wake() {
	s.last.Store(time.Now().UnixNano())
	if s.awake.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startLocked(s.shares[:1])
	s.rest = time.After(wakeStagger)
	s.awake.Store(true)
	s.log.Debug("worker awake")
}

// startRest starts the servers after the first, if still awake.
func (s *scaler) startRest() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rest = nil
	if s.awake.Load() {
		s.startLocked(s.shares[1:])
	}
}

func (s *scaler) startLocked(shares []int) {
	for _, share := range shares {
		srv := s.newServer(share)
		if err := srv.Start(s.mux); err != nil {
			// The lead still runs every task, only with fewer slots.
			s.log.Warn("worker: could not start an asynq processor", "err", err)
			continue
		}
		s.running = append(s.running, srv)
	}
}

// sleep shuts the servers down in the background: each lets its tasks
// in flight finish (asynq's graceful shutdown) while the lead and any
// servers a new wake starts go on.
func (s *scaler) sleep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awake.Store(false)
	s.rest = nil
	for _, srv := range s.running {
		s.closing.Go(srv.Shutdown)
	}
	s.running = nil
	s.log.Debug("worker idle", "processors", 1)
}

// shutdown stops waking and shuts every server down, waiting for their
// tasks in flight.
func (s *scaler) shutdown() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	s.mu.Lock()
	for _, srv := range s.running {
		s.closing.Go(srv.Shutdown) // at once: each waits up to ShutdownTimeout
	}
	s.running = nil
	s.awake.Store(false)
	s.mu.Unlock()
	s.closing.Wait()
}
