package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// PastPauses is how many ended pauses are kept per partner: enough to
// cover any max_age with room to spare, since only the pauses that
// overlap a delivery's life count.
const PastPauses = 64

// PartnerPause is what the store knows of one partner's pauses.
type PartnerPause struct {
	Paused bool      // paused now
	Since  time.Time // when the pause in force began
	Reason string    // why, as given to Pause; may be ""
	By     string    // who paused it: "cli", "api" or "auto" (auto_pause)
	// Past are the pauses that ended, newest first (at most PastPauses).
	Past []Interval
}

// Interval is one span of time, a pause from Start to End.
type Interval struct{ Start, End time.Time }

// During is how long the partner was paused between from and to: the
// overlap of the span with its past pauses and the one in force, which
// counts as lasting until to. Each past pause counts tail longer (the time
// its held deliveries may take to learn of the resume), up to the start
// of the next pause.
func (p PartnerPause) During(from, to time.Time, tail time.Duration) time.Duration {
	var d time.Duration
	add := func(start, end time.Time) {
		start, end = later(start, from), earlier(end, to)
		if end.After(start) {
			d += end.Sub(start)
		}
	}
	next := time.Time{} // the start of the newer pause, if any
	if p.Paused {
		add(p.Since, to)
		next = p.Since
	}
	for _, iv := range p.Past {
		end := iv.End.Add(tail)
		if !next.IsZero() {
			end = earlier(end, next)
		}
		if !end.After(from) {
			break // newest first: the rest ended earlier still
		}
		add(iv.Start, end)
		next = iv.Start
	}
	return d
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// pauseNote is the part of a PausedKey value after "since_ms:".
type pauseNote struct {
	Reason string `json:"reason,omitempty"`
	By     string `json:"by"`
}

// Pause pauses partner as of now, with why and who: its deliveries are
// held until Resume. Pausing a paused partner keeps the time it was first
// paused and takes the new reason. It returns the pause in force.
func (s *Store) Pause(ctx context.Context, partner, reason, by string, now time.Time) (PartnerPause, error) {
	note, err := json.Marshal(pauseNote{Reason: reason, By: by})
	if err != nil {
		return PartnerPause{}, err
	}
	since, err := pauseScript.Run(ctx, s.rdb, []string{PausedKey}, partner, now.UnixMilli(), note).Int64()
	if err != nil {
		return PartnerPause{}, fmt.Errorf("pause %s: %w", partner, err)
	}
	return PartnerPause{Paused: true, Since: time.UnixMilli(since), Reason: reason, By: by}, nil
}

// pauseScript records a pause unless one is in force, whose start it
// keeps.
//
// KEYS[1] PausedKey
// ARGV[1] partner  ARGV[2] now (Unix ms)  ARGV[3] the pauseNote JSON
// Returns the pause's start (Unix ms).
var pauseScript = redis.NewScript(`
local since = ARGV[2]
local cur = redis.call("HGET", KEYS[1], ARGV[1])
if cur then
  since = string.match(cur, "^(%d+):") or since
end
redis.call("HSET", KEYS[1], ARGV[1], since .. ":" .. ARGV[3])
return tonumber(since)
`)

// Resume ends partner's pause as of now and keeps it among the past
// ones. It reports whether the partner was paused.
func (s *Store) Resume(ctx context.Context, partner string, now time.Time) (bool, error) {
	n, err := resumeScript.Run(ctx, s.rdb, []string{PausedKey, PausedPastKey}, partner, now.UnixMilli(), PastPauses).Int()
	if err != nil {
		return false, fmt.Errorf("resume %s: %w", partner, err)
	}
	return n == 1, nil
}

// resumeScript ends a pause and prepends it to the partner's past ones.
//
// KEYS[1] PausedKey  KEYS[2] PausedPastKey
// ARGV[1] partner  ARGV[2] now (Unix ms)  ARGV[3] how many past pauses to keep
// Returns 1, or 0 when the partner was not paused.
var resumeScript = redis.NewScript(`
local cur = redis.call("HGET", KEYS[1], ARGV[1])
if not cur then return 0 end
redis.call("HDEL", KEYS[1], ARGV[1])
local since = string.match(cur, "^(%d+):")
if not since then return 1 end
local out = {since .. "-" .. ARGV[2]}
local past = redis.call("HGET", KEYS[2], ARGV[1])
if past then
  for e in string.gmatch(past, "[^,]+") do
    if #out >= tonumber(ARGV[3]) then break end
    out[#out + 1] = e
  end
end
redis.call("HSET", KEYS[2], ARGV[1], table.concat(out, ","))
return 1
`)

// Paused returns every partner that is paused now or was paused before,
// by id, in one round trip.
func (s *Store) Paused(ctx context.Context) (map[string]PartnerPause, error) {
	var now, past *redis.MapStringStringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		now = p.HGetAll(ctx, PausedKey)
		past = p.HGetAll(ctx, PausedPastKey)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read pauses: %w", err)
	}
	out := make(map[string]PartnerPause, len(now.Val())+len(past.Val()))
	for id, v := range past.Val() {
		var pp PartnerPause
		for e := range strings.SplitSeq(v, ",") {
			a, b, ok := strings.Cut(e, "-")
			if !ok {
				continue
			}
			pp.Past = append(pp.Past, Interval{Start: time.UnixMilli(atoi64(a)), End: time.UnixMilli(atoi64(b))})
		}
		out[id] = pp
	}
	for id, v := range now.Val() {
		pp := out[id]
		since, rest, _ := strings.Cut(v, ":")
		ms, err := strconv.ParseInt(since, 10, 64)
		if err != nil {
			continue
		}
		var note pauseNote
		_ = json.Unmarshal([]byte(rest), &note)
		pp.Paused, pp.Since, pp.Reason, pp.By = true, time.UnixMilli(ms), note.Reason, note.By
		out[id] = pp
	}
	return out, nil
}
