package httpapi

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/store"
)

// Timings of the write probe.
const (
	// probeFresh is how long a probe's outcome answers /readyz: the
	// probes of many load balancers make one write a second at most.
	probeFresh = time.Second
	// probeTTL is how long store.ReadyKey outlives its last write.
	probeTTL = time.Minute
)

// writeProbe tells /readyz whether Redis takes a write. A Redis that
// answers PING but refuses writes (out of memory under noeviction, a
// read-only replica) has every event answered 503, so the API is not
// ready; and once it takes writes again, a probe finds so by itself,
// though no event is sent meanwhile.
type writeProbe struct {
	rdb redis.UniversalClient
	now func() time.Time

	mu  sync.Mutex
	at  time.Time // of the outcome below; zero: none worth keeping
	err error
}

// check returns the outcome of a fresh probe, making one if the last is
// older than probeFresh. Calls wait for a probe under way, and share it.
func (p *writeProbe) check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !p.at.IsZero() && now.Sub(p.at) < probeFresh && now.Sub(p.at) >= 0 {
		return p.err
	}
	err := p.rdb.Set(ctx, store.ReadyKey, strconv.FormatInt(now.UnixMilli(), 10), probeTTL).Err()
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err // the caller gave up: no outcome for the others
	}
	p.at, p.err = now, err
	return err
}

// failed is told that intake could not store events: the next check
// probes rather than repeat an earlier success.
func (p *writeProbe) failed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.at = time.Time{}
	}
}

// why says, for /readyz, what err of a probe means.
func (p *writeProbe) why(err error) string {
	var re redis.Error
	switch {
	case errors.As(err, &re):
		return "Redis refuses writes: " + re.Error() + "; every event would be answered 503"
	case errors.Is(err, context.DeadlineExceeded):
		return "a test write to Redis did not complete in time; events would be answered 503"
	}
	return "a test write to Redis failed; events would be answered 503"
}
