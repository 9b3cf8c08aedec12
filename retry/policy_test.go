package retry_test

import (
	"math"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/retry"
)

// fixed returns a random source that always yields v.
func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestPolicy_WithDefaults(t *testing.T) {
	t.Parallel()

	require.Equal(t, retry.Policy{
		MaxAttempts:     10,
		MaxAge:          24 * time.Hour,
		InitialInterval: 30 * time.Second,
		MaxInterval:     time.Hour,
		Multiplier:      2,
		Jitter:          0.2,
	}, retry.Policy{}.WithDefaults())

	set := retry.Policy{MaxAttempts: 3, MaxAge: time.Hour, InitialInterval: time.Second,
		MaxInterval: time.Minute, Multiplier: 1.5, Jitter: retry.NoJitter}
	require.Equal(t, set, set.WithDefaults())
}

func TestPolicy_Validate(t *testing.T) {
	t.Parallel()

	require.NoError(t, retry.Policy{}.WithDefaults().Validate())
	require.NoError(t, retry.Policy{Jitter: retry.NoJitter}.WithDefaults().Validate())
	require.NoError(t, retry.Policy{Jitter: 1, Multiplier: 1}.WithDefaults().Validate())

	tests := []struct {
		name string
		p    retry.Policy
		want string
	}{
		{"max_attempts", retry.Policy{MaxAttempts: -1}, "retry.max_attempts: must be >= 1, got -1"},
		{"max_age", retry.Policy{MaxAge: -time.Second}, "retry.max_age: must be > 0, got -1s"},
		{"initial_interval", retry.Policy{InitialInterval: -time.Second}, "retry.initial_interval: must be > 0, got -1s"},
		{"max_interval", retry.Policy{InitialInterval: time.Minute, MaxInterval: time.Second}, "retry.max_interval: must be >= initial_interval (1m0s), got 1s"},
		{"multiplier", retry.Policy{Multiplier: 0.5}, "retry.multiplier: must be >= 1, got 0.5"},
		{"multiplier NaN", retry.Policy{Multiplier: math.NaN()}, "retry.multiplier: must be >= 1, got NaN"},
		{"multiplier Inf", retry.Policy{Multiplier: math.Inf(1)}, "retry.multiplier: must be >= 1, got +Inf"},
		{"jitter high", retry.Policy{Jitter: 1.5}, "retry.jitter: must be between 0 and 1, got 1.5"},
		{"jitter negative", retry.Policy{Jitter: -0.5}, "retry.jitter: must be between 0 and 1, got -0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.EqualError(t, tt.p.WithDefaults().Validate(), tt.want)
		})
	}

	t.Run("every problem", func(t *testing.T) {
		t.Parallel()
		err := retry.Policy{MaxAttempts: -1, Multiplier: 0.5}.WithDefaults().Validate()
		require.ErrorContains(t, err, "retry.max_attempts")
		require.ErrorContains(t, err, "retry.multiplier")
	})
}

func TestPolicy_Delay(t *testing.T) {
	t.Parallel()

	p := retry.Policy{} // defaults: 30s * 2^(n-1), capped at 1h, jitter 0.2

	t.Run("no jitter effect at 0.5", func(t *testing.T) {
		t.Parallel()
		want := []time.Duration{
			30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute,
			8 * time.Minute, 16 * time.Minute, 32 * time.Minute,
			time.Hour, time.Hour, time.Hour, time.Hour, time.Hour, // 64m and beyond: capped
		}
		for n := 1; n <= 12; n++ {
			require.Equal(t, want[n-1], p.Delay(n, fixed(0.5)), "n=%d", n)
		}
	})

	t.Run("jitter bounds", func(t *testing.T) {
		t.Parallel()
		for n := 1; n <= 12; n++ {
			iv := p.Delay(n, fixed(0.5))
			lo, hi := p.Delay(n, fixed(0)), p.Delay(n, fixed(math.Nextafter(1, 0)))
			require.Equal(t, time.Duration(float64(iv)*0.8), lo, "n=%d", n)
			require.LessOrEqual(t, hi, time.Duration(float64(iv)*1.2), "n=%d", n)
			require.Greater(t, hi, time.Duration(float64(iv)*1.19), "n=%d", n)
		}
	})

	t.Run("cap applies before jitter", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, 48*time.Minute, p.Delay(20, fixed(0)))
		require.Equal(t, 72*time.Minute, p.Delay(20, fixed(1)))
	})

	t.Run("no jitter", func(t *testing.T) {
		t.Parallel()
		p := retry.Policy{Jitter: retry.NoJitter}
		require.Equal(t, 2*time.Minute, p.Delay(3, fixed(0)))
		require.Equal(t, 2*time.Minute, p.Delay(3, fixed(0.99)))
	})

	t.Run("n below 1 counts as 1", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, 30*time.Second, p.Delay(0, fixed(0.5)))
		require.Equal(t, 30*time.Second, p.Delay(-7, fixed(0.5)))
	})

	t.Run("no overflow", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, time.Hour, p.Delay(1000, fixed(0.5)))
		require.Equal(t, time.Hour, p.Delay(math.MaxInt, fixed(0.5)))
		huge := retry.Policy{InitialInterval: time.Duration(math.MaxInt64 / 2), MaxInterval: time.Duration(math.MaxInt64), Jitter: 1}
		require.Equal(t, time.Duration(math.MaxInt64), huge.Delay(1000, fixed(0.99)))
		require.Positive(t, huge.Delay(1000, fixed(0.25)))
	})

	t.Run("nil rnd uses the global source", func(t *testing.T) {
		t.Parallel()
		for range 100 {
			d := p.Delay(2, nil)
			require.GreaterOrEqual(t, d, 48*time.Second)
			require.LessOrEqual(t, d, 72*time.Second)
		}
	})
}

// TestPolicy_DelayMatchesBackoff checks Delay against the library it follows:
// stepping cenkalti/backoff's ExponentialBackOff without randomization gives
// the same interval, up to the nanoseconds its per-step truncation loses.
func TestPolicy_DelayMatchesBackoff(t *testing.T) {
	t.Parallel()

	for _, p := range []retry.Policy{
		{},
		{InitialInterval: time.Second, MaxInterval: 10 * time.Minute, Multiplier: 1.5},
		{InitialInterval: 333 * time.Millisecond, MaxInterval: time.Hour, Multiplier: 3.7},
		{InitialInterval: time.Minute, MaxInterval: time.Minute, Multiplier: 1},
	} {
		p := p.WithDefaults()
		b := backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(p.InitialInterval),
			backoff.WithMaxInterval(p.MaxInterval),
			backoff.WithMultiplier(p.Multiplier),
			backoff.WithRandomizationFactor(0),
			backoff.WithMaxElapsedTime(0),
		)
		for n := 1; n <= 30; n++ {
			want := b.NextBackOff()
			require.InDelta(t, float64(want), float64(p.Delay(n, fixed(0.5))), 100, "policy %+v n=%d", p, n)
		}
	}
}

func TestPolicy_Next(t *testing.T) {
	t.Parallel()

	first := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	p := retry.Policy{MaxAttempts: 5, MaxAge: 2 * time.Hour, Jitter: retry.NoJitter}
	half := fixed(0.5)

	tests := []struct {
		name       string
		p          retry.Policy
		noFirst    bool // the first enqueue time is unknown (zero)
		n          int
		now        time.Time
		retryAfter time.Duration
		wantDelay  time.Duration
		wantDone   bool
	}{
		{name: "first failure", p: p, n: 1, now: first, wantDelay: 30 * time.Second},
		{name: "last attempt left", p: p, n: 4, now: first, wantDelay: 4 * time.Minute},
		{name: "max_attempts reached", p: p, n: 5, now: first, wantDone: true},
		{name: "past max_attempts", p: p, n: 6, now: first, wantDone: true},
		{name: "one attempt only", p: retry.Policy{MaxAttempts: 1}, n: 1, now: first, wantDone: true},
		{name: "retry lands exactly on max_age", p: p, n: 1, now: first.Add(2*time.Hour - 30*time.Second), wantDelay: 30 * time.Second},
		{name: "retry lands past max_age", p: p, n: 1, now: first.Add(2*time.Hour - 29*time.Second), wantDone: true},
		{name: "already past max_age", p: p, n: 1, now: first.Add(3 * time.Hour), wantDone: true},
		{name: "retry-after longer than backoff", p: p, n: 1, now: first, retryAfter: 10 * time.Minute, wantDelay: 10 * time.Minute},
		{name: "retry-after shorter than backoff", p: p, n: 3, now: first, retryAfter: 5 * time.Second, wantDelay: 2 * time.Minute},
		{name: "retry-after capped at max_interval", p: retry.Policy{MaxInterval: 5 * time.Minute, Jitter: retry.NoJitter}, n: 1, now: first, retryAfter: 24 * time.Hour, wantDelay: 5 * time.Minute},
		{name: "retry-after pushes past max_age", p: p, n: 1, now: first.Add(90 * time.Minute), retryAfter: time.Hour, wantDone: true},
		{name: "unknown first enqueue skips max_age", p: p, n: 1, noFirst: true, now: first.Add(time.Hour * 100), wantDelay: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := first
			if tt.noFirst {
				f = time.Time{}
			}
			d, done := tt.p.Next(tt.n, f, tt.now, tt.retryAfter, half)
			require.Equal(t, tt.wantDone, done)
			require.Equal(t, tt.wantDelay, d)
		})
	}

	t.Run("jitter kept at the cap", func(t *testing.T) {
		t.Parallel()
		d, done := retry.Policy{}.Next(9, first, first, 24*time.Hour, fixed(1))
		require.False(t, done)
		require.Equal(t, 72*time.Minute, d)
	})
}

func TestPolicy_Expired(t *testing.T) {
	t.Parallel()

	first := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	p := retry.Policy{MaxAge: time.Hour}
	require.False(t, p.Expired(first, first.Add(time.Hour)))
	require.True(t, p.Expired(first, first.Add(time.Hour+1)))
	require.False(t, p.Expired(time.Time{}, first.Add(100*time.Hour)))
	require.True(t, retry.Policy{}.Expired(first, first.Add(25*time.Hour)))
}
