package retry

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults for the zero fields of a [Policy].
const (
	DefaultMaxAttempts     = 10
	DefaultMaxAge          = 24 * time.Hour
	DefaultInitialInterval = 30 * time.Second
	DefaultMaxInterval     = time.Hour
	DefaultMultiplier      = 2.0
	DefaultJitter          = 0.2
)

// NoJitter, as [Policy.Jitter], turns jitter off. A zero Jitter means
// "unset" and takes [DefaultJitter], so a config loader that reads an
// explicit `jitter: 0` should store NoJitter.
const NoJitter = -1.0

// Policy is a partner's retry policy (config `retry:`). Zero fields take
// their defaults through [Policy.WithDefaults]; [Policy.Delay] and
// [Policy.Next] apply them themselves, so the zero Policy is the default one.
type Policy struct {
	// MaxAttempts is the total number of attempts, the first included.
	// Default 10.
	MaxAttempts int
	// MaxAge bounds the whole life of a delivery, measured from the event's
	// first enqueue; no retry or deferral is scheduled past it. Default 24h.
	MaxAge time.Duration
	// InitialInterval is the wait after the first failed attempt, before
	// jitter. Default 30s.
	InitialInterval time.Duration
	// MaxInterval caps the backoff interval before jitter (as in
	// cenkalti/backoff's ExponentialBackOff), so a jittered wait can reach
	// MaxInterval*(1+Jitter). It also caps a partner's Retry-After.
	// Default 1h.
	MaxInterval time.Duration
	// Multiplier grows the interval after each failed attempt. Default 2.
	Multiplier float64
	// Jitter is the randomization factor: the wait is drawn uniformly from
	// interval*[1-Jitter, 1+Jitter]. Default 0.2; use [NoJitter] for none.
	Jitter float64
}

// WithDefaults returns p with every zero field set to its default.
func (p Policy) WithDefaults() Policy {
	p.MaxAttempts = cmp.Or(p.MaxAttempts, DefaultMaxAttempts)
	p.MaxAge = cmp.Or(p.MaxAge, DefaultMaxAge)
	p.InitialInterval = cmp.Or(p.InitialInterval, DefaultInitialInterval)
	p.MaxInterval = cmp.Or(p.MaxInterval, DefaultMaxInterval)
	p.Multiplier = cmp.Or(p.Multiplier, DefaultMultiplier)
	p.Jitter = cmp.Or(p.Jitter, DefaultJitter)
	return p
}

// Validate reports every problem of p, one per field, named as in the
// config (`retry.max_attempts: ...`). Call it on p.WithDefaults() so that
// unset fields are not reported.
func (p Policy) Validate() error {
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("retry.max_attempts: must be >= 1, got %d", p.MaxAttempts))
	}
	if p.MaxAge <= 0 {
		errs = append(errs, fmt.Errorf("retry.max_age: must be > 0, got %s", p.MaxAge))
	}
	if p.InitialInterval <= 0 {
		errs = append(errs, fmt.Errorf("retry.initial_interval: must be > 0, got %s", p.InitialInterval))
	}
	if p.MaxInterval < p.InitialInterval {
		errs = append(errs, fmt.Errorf("retry.max_interval: must be >= initial_interval (%s), got %s", p.InitialInterval, p.MaxInterval))
	}
	// Written as !(x >= 1) so that NaN fails too.
	if !(p.Multiplier >= 1) || math.IsInf(p.Multiplier, 0) {
		errs = append(errs, fmt.Errorf("retry.multiplier: must be >= 1, got %v", p.Multiplier))
	}
	if p.Jitter != NoJitter && !(p.Jitter >= 0 && p.Jitter <= 1) {
		errs = append(errs, fmt.Errorf("retry.jitter: must be between 0 and 1, got %v", p.Jitter))
	}
	return errors.Join(errs...)
}

// Delay returns the wait before attempt n+1 after n failed attempts (n >= 1;
// smaller n counts as 1). It follows cenkalti/backoff/v4's
// ExponentialBackOff: interval = InitialInterval * Multiplier^(n-1), capped
// at MaxInterval, then multiplied by a factor drawn from [1-Jitter, 1+Jitter].
//
// rnd returns a value in [0, 1); 0.5 means no jitter effect. A nil rnd uses
// math/rand/v2's global source. Delay never overflows: a huge n is simply
// MaxInterval. Invalid fields are clamped rather than trusted (a Multiplier
// below 1 acts as 1), so Delay is total; report them with [Policy.Validate].
func (p Policy) Delay(n int, rnd func() float64) time.Duration {
	p = p.WithDefaults()
	iv := p.interval(n)

	j := p.Jitter
	if j < 0 {
		return iv
	}
	j = min(j, 1)
	if rnd == nil {
		rnd = rand.Float64
	}
	r := min(max(rnd(), 0), 1)
	d := float64(iv) * (1 + j*(2*r-1))
	if d >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// interval is the un-jittered backoff after n failed attempts. It is the
// closed form of what ExponentialBackOff reaches by stepping n times, so it
// costs the same for n = 3 and n = 1e9.
func (p Policy) interval(n int) time.Duration {
	maxIv := max(p.MaxInterval, p.InitialInterval)
	n = max(n, 1)
	iv := float64(p.InitialInterval) * math.Pow(max(p.Multiplier, 1), float64(n-1))
	// Written as !(iv < max) so that +Inf and NaN land on the cap.
	if !(iv < float64(maxIv)) {
		return maxIv
	}
	return time.Duration(iv)
}

// Next decides what happens after failed attempt n (1 for the first), given
// when the delivery was first enqueued, now, and the wait the partner asked
// for (Retry-After; 0 if none).
//
// The wait is the larger of the backoff ([Policy.Delay]) and retryAfter,
// where retryAfter is first capped at MaxInterval: a partner cannot park a
// delivery for a week, and the backoff keeps its jitter at the cap. Next
// gives up (exhausted, with a zero delay) when n >= MaxAttempts or when the
// next attempt would start after first+MaxAge.
func (p Policy) Next(n int, first, now time.Time, retryAfter time.Duration, rnd func() float64) (delay time.Duration, exhausted bool) {
	p = p.WithDefaults()
	if n >= p.MaxAttempts {
		return 0, true
	}
	delay = max(p.Delay(n, rnd), min(retryAfter, p.MaxInterval))
	if p.Expired(first, now.Add(delay)) {
		return 0, true
	}
	return delay, false
}

// Expired reports whether at is past first+MaxAge. Deferrals use it: they
// spend no attempt but are still bound by max_age. A zero first means the
// enqueue time is unknown and nothing expires (max_attempts still bounds
// retries), rather than dead-lettering every delivery at once.
func (p Policy) Expired(first, at time.Time) bool {
	if first.IsZero() {
		return false
	}
	p = p.WithDefaults()
	return at.After(first.Add(p.MaxAge))
}
