package retry

import (
	"errors"
	"fmt"
	"time"
)

// DelayError is returned by a queue handler to ask the queue to run the
// delivery again after Delay (asynq reads it in RetryDelayFunc, the way
// river reads JobSnooze). Deferral=true means no attempt was spent (rate
// limit, open circuit), so the queue must not count it as a failure.
type DelayError struct {
	Delay    time.Duration // wait before the next run; never negative
	Deferral bool          // true: no attempt was spent
	Err      error         // why; may be nil
}

// Error describes the intent and its cause.
func (e *DelayError) Error() string {
	verb := "retry"
	if e.Deferral {
		verb = "defer"
	}
	if e.Err == nil {
		return fmt.Sprintf("%s in %s", verb, e.Delay)
	}
	return fmt.Sprintf("%s in %s: %v", verb, e.Delay, e.Err)
}

// Unwrap returns the cause.
func (e *DelayError) Unwrap() error { return e.Err }

// After asks for a retry after d, for an attempt that was spent. A negative
// d counts as 0.
func After(d time.Duration, cause error) error {
	return &DelayError{Delay: max(d, 0), Err: cause}
}

// Defer asks to run the delivery again after d without spending an attempt
// (the partner is rate-limited or its circuit is open). A negative d counts
// as 0. Check [Policy.Expired] first: deferrals are still bound by max_age.
func Defer(d time.Duration, cause error) error {
	return &DelayError{Delay: max(d, 0), Deferral: true, Err: cause}
}

// DelayOf finds a [DelayError] in err's chain and returns its delay and
// whether it is a deferral; ok is false when there is none.
func DelayOf(err error) (d time.Duration, deferral bool, ok bool) {
	var de *DelayError
	if !errors.As(err, &de) {
		return 0, false, false
	}
	return de.Delay, de.Deferral, true
}
