package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/retry"
)

// Why a delivery was deferred: the cause inside the retry.Defer error that
// [Gate.Acquire] returns. Match with errors.Is.
var (
	// ErrRateLimited: the partner's rate_limit, shared by every worker, is
	// used up for now.
	ErrRateLimited = errors.New("partner rate limit reached")
	// ErrPartnerBusy: this process already has the partner's `concurrency`
	// requests in flight, or its circuit is half-open with its one probe in
	// flight.
	ErrPartnerBusy = errors.New("partner concurrency cap reached")
	// ErrCircuitOpen: the partner failed repeatedly; its circuit breaker is
	// open and no request goes out until it half-opens.
	ErrCircuitOpen = errors.New("partner circuit open")
)

// GateConfig configures a Gate.
type GateConfig struct {
	// Redis holds the rate-limit counters shared by every worker process.
	// Required.
	Redis redis.UniversalClient
	// BreakerFailures is how many consecutive failed attempts (transport
	// errors, timeouts, 5xx) open a partner's circuit. Default 10.
	BreakerFailures int
	// BreakerOpenFor is how long an open circuit stays open before one
	// probe request is let through (half-open). Default 30s.
	BreakerOpenFor time.Duration
	// BusyDelay is how long a delivery is deferred when its partner already
	// has `concurrency` requests in flight in this process. Jitter of up to
	// half of it is added. Default 1s.
	BusyDelay time.Duration
	// Logger gets circuit state changes; default slog.Default().
	Logger *slog.Logger
	// OnOpen, when set, is called (in a goroutine of its own) with the
	// partner whose circuit just opened in this process.
	OnOpen func(partner string)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand draws jitter in [0,1); default math/rand/v2.
	Rand func() float64
}

// WithDefaults returns c with every unset field set to its default.
func (c GateConfig) WithDefaults() GateConfig {
	c.BreakerFailures = cmp.Or(max(c.BreakerFailures, 0), 10)
	c.BreakerOpenFor = cmp.Or(max(c.BreakerOpenFor, 0), 30*time.Second)
	c.BusyDelay = cmp.Or(max(c.BusyDelay, 0), time.Second)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// Gate isolates partners from each other inside a worker: a partner's
// rate_limit (shared by all worker processes through Redis), its
// concurrency cap (per process) and a circuit breaker per partner. A
// partner that hangs or fails then ties up none of the worker's slots
// beyond its own cap: its other deliveries are deferred, not queued behind
// it, and every other partner's deliveries go on.
//
// State is kept by partner id and settings are read from the partner
// passed to each call, so a config reload applies to the next delivery; a
// circuit's state survives reloads.
type Gate struct {
	cfg     GateConfig
	limiter *redis_rate.Limiter

	mu       sync.Mutex
	partners map[string]*partnerGate
}

// partnerGate is one partner's isolation state in this process.
type partnerGate struct {
	id      string
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	// openUntil is when the open circuit lets a probe through (Unix ns).
	openUntil atomic.Int64

	// slots is the concurrency semaphore (nil: no cap) sized for capacity;
	// a reload with a new concurrency replaces it. Guarded by Gate.mu.
	slots    chan struct{}
	capacity int
}

// NewGate returns a Gate.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.Redis == nil {
		return nil, errors.New("delivery: GateConfig needs Redis")
	}
	return &Gate{
		cfg:      cfg.WithDefaults(),
		limiter:  redis_rate.NewLimiter(cfg.Redis),
		partners: make(map[string]*partnerGate),
	}, nil
}

// Acquire asks to send one request to partner p now. When it may, Acquire
// returns done, which the caller must call exactly once with the attempt's
// result (it frees the concurrency slot and feeds the circuit breaker).
// When it may not, err is a retry.Defer error (errors.Is matches
// ErrRateLimited, ErrPartnerBusy or ErrCircuitOpen; a Redis failure while
// reading the rate limit defers too) whose delay says when to try again;
// deferrals spend no attempt, but the caller must still check max_age.
func (g *Gate) Acquire(ctx context.Context, p *config.Partner) (done func(retry.Result), err error) {
	pg, slots := g.partner(p)

	if slots != nil {
		select {
		case slots <- struct{}{}:
		default:
			return nil, retry.Defer(g.jitter(g.cfg.BusyDelay), ErrPartnerBusy)
		}
	}
	free := func() {
		if slots != nil {
			<-slots
		}
	}

	report, err := pg.breaker.Allow()
	if err != nil {
		free()
		if errors.Is(err, gobreaker.ErrOpenState) {
			wait := time.Duration(pg.openUntil.Load() - g.cfg.Now().UnixNano())
			return nil, retry.Defer(g.jitter(max(wait, 100*time.Millisecond)), ErrCircuitOpen)
		}
		// Half-open with its probe in flight.
		return nil, retry.Defer(g.jitter(g.cfg.BusyDelay), ErrPartnerBusy)
	}

	if rl := p.RateLimit; rl.Requests > 0 && rl.Per > 0 {
		limit := redis_rate.Limit{Rate: rl.Requests, Burst: rl.Requests, Period: rl.Per}
		res, err := g.limiter.Allow(ctx, store.RateLimitKey(p.ID), limit)
		if err != nil || res.Allowed == 0 {
			report(errNotSent)
			free()
			if err != nil {
				return nil, retry.Defer(g.jitter(time.Second), fmt.Errorf("rate limit of partner %s: %w", p.ID, err))
			}
			// Several deliveries waiting on the same limit would all come
			// back at the same instant; the jitter spreads them over at
			// least a quarter second.
			wait := max(res.RetryAfter, time.Millisecond)
			return nil, retry.Defer(wait+time.Duration(g.cfg.Rand()*float64(max(wait, 250*time.Millisecond))), ErrRateLimited)
		}
	}

	var once sync.Once
	return func(r retry.Result) {
		once.Do(func() {
			report(breakerVerdict(r))
			free()
		})
	}, nil
}

// CircuitState returns partner id's circuit state in this process:
// "closed", "half-open" or "open" (closed for a partner never seen). It
// also moves an open circuit whose time is up to half-open.
func (g *Gate) CircuitState(id string) string {
	g.mu.Lock()
	pg := g.partners[id]
	g.mu.Unlock()
	if pg == nil {
		return gobreaker.StateClosed.String()
	}
	return pg.breaker.State().String()
}

// refreshCircuits sets the circuit gauge of every partner in ids and of
// every partner seen so far from its breaker's state. Reading the state
// moves an open circuit whose time is up to half-open, so the gauge clears
// even when no delivery for the partner has come by.
func (g *Gate) refreshCircuits(ids []string) {
	g.mu.Lock()
	seen := make(map[string]*partnerGate, len(g.partners))
	for id, pg := range g.partners {
		seen[id] = pg
	}
	g.mu.Unlock()
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = nil
		}
	}
	for id, pg := range seen {
		open := 0.0
		if pg != nil && pg.breaker.State() == gobreaker.StateOpen {
			open = 1
		}
		metrics.CircuitOpen.WithLabelValues(id).Set(open)
	}
}

// partner returns p's state, creating it on first use and resizing its
// semaphore when a reload changed p's concurrency.
func (g *Gate) partner(p *config.Partner) (*partnerGate, chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	pg := g.partners[p.ID]
	if pg == nil {
		pg = &partnerGate{id: p.ID}
		pg.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        p.ID,
			MaxRequests: 1,
			Timeout:     g.cfg.BreakerOpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= uint32(g.cfg.BreakerFailures)
			},
			OnStateChange: func(name string, from, to gobreaker.State) { g.stateChanged(pg, from, to) },
			IsSuccessful:  func(err error) bool { return err == nil },
			IsExcluded:    func(err error) bool { return errors.Is(err, errNotSent) },
		})
		metrics.CircuitOpen.WithLabelValues(p.ID).Set(0)
		g.partners[p.ID] = pg
	}
	if n := max(p.Concurrency, 0); n != pg.capacity {
		// Requests in flight keep the old channel and free their slot in
		// it; the new cap counts from now.
		pg.capacity, pg.slots = n, nil
		if n > 0 {
			pg.slots = make(chan struct{}, n)
		}
	}
	return pg, pg.slots
}

// stateChanged runs under the breaker's lock: no breaker calls here.
func (g *Gate) stateChanged(pg *partnerGate, from, to gobreaker.State) {
	open := 0.0
	if to == gobreaker.StateOpen {
		open = 1
		pg.openUntil.Store(g.cfg.Now().Add(g.cfg.BreakerOpenFor).UnixNano())
		g.cfg.Logger.Warn("partner circuit opened: its deliveries are deferred", "partner", pg.id,
			"from", from.String(), "failures", g.cfg.BreakerFailures, "probe_in", g.cfg.BreakerOpenFor.String())
		if g.cfg.OnOpen != nil && from == gobreaker.StateClosed {
			go g.cfg.OnOpen(pg.id)
		}
	} else {
		g.cfg.Logger.Info("partner circuit "+to.String(), "partner", pg.id, "from", from.String())
	}
	metrics.CircuitOpen.WithLabelValues(pg.id).Set(open)
}

func (g *Gate) jitter(d time.Duration) time.Duration {
	return d + time.Duration(g.cfg.Rand()*float64(d)/2)
}

var (
	// errNotSent reports a slot taken and given back without a request:
	// the breaker counts it neither way.
	errNotSent = errors.New("not sent")
	// errPartnerFailed is a failed attempt for the breaker.
	errPartnerFailed = errors.New("partner failed")
)

// breakerVerdict says what an attempt tells about the partner's health:
// nil (healthy), errPartnerFailed (transport error, timeout, 5xx) or
// errNotSent (blocked by the SSRF guard or cut short by our own shutdown:
// nothing about the partner). A 4xx or a 429 is an answer from a live
// partner: its Retry-After is honoured per delivery, not by the breaker.
func breakerVerdict(r retry.Result) error {
	switch {
	case r.StatusCode >= 500:
		return errPartnerFailed
	case r.StatusCode > 0:
		return nil
	case r.Err == nil:
		return errPartnerFailed
	case errors.Is(r.Err, context.Canceled):
		return errNotSent
	}
	var b interface{ Blocked() bool }
	if errors.As(r.Err, &b) && b.Blocked() {
		return errNotSent
	}
	return errPartnerFailed
}
