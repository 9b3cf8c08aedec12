package delivery

import (
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// What a delivery task answers asynq when it needs another run: each
// function is one reason, with its delay and whether it spends one of the
// delivery's attempts (retry.After) or not (retry.Defer). asynq reads the
// delay through Worker's RetryDelayFunc and the spending through its
// IsFailure. The gate's own deferrals (rate limit, concurrency, circuit)
// are made by Gate.Acquire.

// retryLater is a failed attempt, to be made again after delay (from the
// partner's retry policy).
func retryLater(delay time.Duration, reason string) error {
	return retry.After(delay, errors.New(reason))
}

// storeFailed is a Redis read or write that failed: the task runs again
// soon, spending nothing. An attempt whose outcome could not be recorded
// is not counted either, so it is made again.
func storeFailed(err error) error { return retry.Defer(time.Second, err) }

// notStarted is a delivery that could not start in time (no worker slot,
// no turn under its partner's cap) or as the worker stops: back to the
// queue at once.
func notStarted(err error) error { return retry.Defer(0, err) }

// underWay is a delivery another task is attempting now (busy is what is
// left of that attempt's lease): look again soon, with jitter.
func underWay(busy time.Duration, rnd float64) error {
	return retry.Defer(min(busy, 2*time.Second)+time.Duration(rnd*float64(250*time.Millisecond)), ErrAttemptUnderWay)
}

// partnerPaused is a delivery whose partner is paused: held, spending
// nothing, and looked at again after a few seconds, with jitter so that a
// resume does not release every held task in the same second.
func partnerPaused(rnd float64) error {
	return retry.Defer(pauseRecheck+time.Duration(rnd*float64(pauseRecheck)), ErrPartnerPaused)
}

// pauseRecheck is how often, at the least, a held delivery looks again
// whether its partner was resumed.
const pauseRecheck = 3 * time.Second

// pauseTail is how long after a resume a held delivery may still wait to
// run (its longest deferral, plus the worker's copy of the pauses
// catching up): max_age counts that time as paused too.
const pauseTail = 2*pauseRecheck + 2*time.Second

// panicked is a delivery whose attempt panicked: its own task runs it
// again, where asynq's recovery applies.
func panicked(r any) error { return retry.Defer(time.Second, fmt.Errorf("panic: %v", r)) }

// noHandOff is a bundle some of whose deliveries could not be handed to
// their own tasks: the bundle runs again (its delivered ones are final).
func noHandOff(failed []error, of int) error {
	return retry.Defer(time.Second, fmt.Errorf("%d of %d deliveries not handed to their own tasks: %w", len(failed), of, failed[0]))
}

// misconfigured is a handler that cannot run this task as configured.
func misconfigured(err error) error { return retry.Defer(time.Minute, err) }

// undecodable is the error of a task that cannot be read. One that a newer
// postback wrote goes back to the queue, without spending an attempt, for
// a newer worker (a deployment mid-upgrade). Anything else cannot be
// replayed either: asynq's archive keeps it visible to `asynq` tooling.
func undecodable(err error) error {
	if errors.Is(err, wire.ErrNewerFormat) {
		return retry.Defer(time.Minute, err)
	}
	return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
}
