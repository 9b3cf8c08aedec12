package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/postbackhq/postback/retry"
)

// Health asks an outcome write (see Meta.Health) to count its attempt
// towards the partner's health, and receives what that led to. The count
// and the auto-pause are made inside the outcome's own script: counting
// costs no round trip of its own, and the partner's failures in a row are
// exact across every worker.
type Health struct {
	// AutoPause is the partner's auto_pause.consecutive_failures; 0: off.
	AutoPause int
	// Track has a success end the partner's failing state (see
	// MarkFailing), for a partner.recovered event.
	Track bool
	// PauseReason is the reason an auto-pause records; it is only used
	// when this attempt failed.
	PauseReason string

	// Fails is the partner's failed attempts in a row after this one (0
	// when auto-pause is off or the attempt did not fail).
	Fails int
	// Paused, when not zero, is the start of the pause this attempt made
	// by reaching AutoPause.
	Paused time.Time
	// Failing, when not zero, is when this attempt brought the partner
	// half way to its auto-pause, if it was not failing already.
	Failing time.Time
	// Recovered, when not zero, is when the failing state this attempt's
	// success ended began.
	Recovered time.Time
	// Err is set when the outcome was written but the attempt could not
	// be counted (a delivery outside shard 0 counts in a second script).
	Err error
}

// health is what the record script is told to count for w.
func (w write) health() (health string, threshold int, track string, note string) {
	h := w.m.Health
	if h == nil || w.attempt == nil {
		return "", 0, "0", ""
	}
	switch w.attempt.Outcome {
	case retry.Delivered.String(), retry.Duplicate.String():
		health = "ok"
	case retry.Retry.String(), retry.Rejected.String():
		health = "fail"
	}
	track = "0"
	if h.Track || h.AutoPause > 0 {
		track = "1"
	}
	if health == "fail" && h.AutoPause > 0 {
		b, _ := json.Marshal(pauseNote{Reason: h.PauseReason, By: "auto"})
		note = string(b)
	}
	return health, h.AutoPause, track, note
}

// MarkFailing records partner as failing since now, unless it already is
// (its circuit opened in another worker, say). It reports whether this
// call made it failing.
func (s *Store) MarkFailing(ctx context.Context, partner string, now time.Time) (bool, error) {
	set, err := s.rdb.HSetNX(ctx, FailingKey, partner, strconv.FormatInt(now.UnixMilli(), 10)).Result()
	if err != nil {
		return false, fmt.Errorf("mark %s failing: %w", partner, err)
	}
	return set, nil
}

// Fails returns partner's failed attempts in a row, as auto-pause counts
// them.
func (s *Store) Fails(ctx context.Context, partner string) (int, error) {
	n, err := s.rdb.HGet(ctx, FailsKey, partner).Int()
	if isNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("failures of %s: %w", partner, err)
	}
	return n, nil
}

// ClaimDLQMinute claims, for the caller, the gathering of partner's dead
// letters of the window (a minute) starting at start into one event. It
// reports whether the caller claimed it (no other dead letter of the
// partner in that window did).
func (s *Store) ClaimDLQMinute(ctx context.Context, partner string, start time.Time, window time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, DLQEventKey(partner, start.UnixMilli()), 1, 2*window+time.Minute).Result()
	if err != nil {
		return false, fmt.Errorf("dlq event of %s: %w", partner, err)
	}
	return ok, nil
}

// unixMilli is a script's time answer: 0 for none.
func unixMilli(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
