package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counts are a partner's outcomes over a span of time.
type Counts struct {
	Attempts  int64 // attempts made
	OK        int64 // attempts the partner accepted
	Delivered int64 // deliveries that ended delivered
	Dead      int64 // deliveries that went to the DLQ
	Skipped   int64 // deliveries skipped on purpose
	// SkippedBy counts the skips of the lifecycle rules by reason code
	// (outside_window, duplicate_conversion, rejected_before_send).
	SkippedBy map[string]int64
	Duplicate int64 // deliveries the partner said it had already (final, not in Delivered)
}

// Counts sums partner's per-minute counters over the span minutes up to
// and including now's minute (at most two hours are kept).
func (s *Store) Counts(ctx context.Context, partner string, now time.Time, span time.Duration) (Counts, error) {
	last := now.Unix() / 60
	n := max(int64(span/time.Minute), 1)
	cmds := make([]*redis.MapStringStringCmd, 0, n)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for m := last - n + 1; m <= last; m++ {
			cmds = append(cmds, p.HGetAll(ctx, s.StatsKey(partner, m)))
		}
		return nil
	})
	if err != nil {
		return Counts{}, fmt.Errorf("read counters: %w", err)
	}
	var c Counts
	for _, cmd := range cmds {
		m := cmd.Val()
		c.Attempts += atoi64(m["attempts"])
		c.OK += atoi64(m["ok"])
		c.Delivered += atoi64(m["delivered"])
		c.Dead += atoi64(m["dead"])
		c.Skipped += atoi64(m["skipped"])
		for k, v := range m {
			if code, ok := strings.CutPrefix(k, "skip:"); ok {
				if c.SkippedBy == nil {
					c.SkippedBy = map[string]int64{}
				}
				c.SkippedBy[code] += atoi64(v)
			}
		}
		c.Duplicate += atoi64(m["duplicate"])
	}
	return c, nil
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// Latencies returns the durations of partner's most recent attempts (up
// to LatencySamples) made at or after since, newest first.
func (s *Store) Latencies(ctx context.Context, partner string, since time.Time) ([]time.Duration, error) {
	raw, err := s.rdb.LRange(ctx, s.LatencyKey(partner), 0, LatencySamples-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read latencies: %w", err)
	}
	out := make([]time.Duration, 0, len(raw))
	for _, r := range raw {
		at, us, ok := strings.Cut(r, ":")
		if !ok {
			continue
		}
		if atoi64(at) < since.UnixMilli() {
			break // newest first: the rest are older still
		}
		out = append(out, time.Duration(atoi64(us))*time.Microsecond)
	}
	return out, nil
}
