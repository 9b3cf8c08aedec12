package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The triage index groups a partner's dead letters by failure fingerprint
// without reading the letters: one small hash field per dead letter (its
// group and revenue) and one description per group, written as each
// letter is. The DLQ index stays the authority on which letters are dead:
// a letter replayed or purged drops out of triage by not being in it, and
// its stale field is removed by the next triage that sees it.

// TriageEntry is one dead letter in the triage index.
type TriageEntry struct {
	Group    string
	Amount   string // the event's revenue amount; "" for none
	Currency string
}

func (e TriageEntry) encode() string { return e.Group + "|" + e.Amount + "|" + e.Currency }

func decodeTriageEntry(s string) (TriageEntry, bool) {
	g, rest, ok := strings.Cut(s, "|")
	if !ok {
		return TriageEntry{}, false
	}
	amt, cur, _ := strings.Cut(rest, "|")
	return TriageEntry{Group: g, Amount: amt, Currency: cur}, true
}

// TriageGroup describes one failure group of a partner, with the latest
// sample written to it.
type TriageGroup struct {
	ID          string `json:"id"`
	Reason      string `json:"reason"`
	Status      int    `json:"status,omitempty"`
	Error       string `json:"error"` // masked
	SampleID    string `json:"sample_id"`
	SampleError string `json:"sample_error,omitempty"` // redacted as in logs
	SampleURL   string `json:"sample_url,omitempty"`   // redacted as in logs
}

// IndexDead adds partner's dead letters entries (by delivery id) to the
// triage index, and groups, in one round trip. Letters are indexed after
// they are written: a letter whose indexing failed is indexed by the next
// triage that finds it missing.
func (s *Store) IndexDead(ctx context.Context, partner string, entries map[string]TriageEntry, groups []TriageGroup) error {
	if len(entries) == 0 && len(groups) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(entries))
	for id, e := range entries {
		fields = append(fields, id, e.encode())
	}
	gfields := make([]any, 0, 2*len(groups))
	for _, g := range groups {
		gj, err := json.Marshal(g)
		if err != nil {
			return err
		}
		gfields = append(gfields, g.ID, gj)
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if len(fields) > 0 {
			p.HSet(ctx, s.TriageKey(partner), fields...)
		}
		if len(gfields) > 0 {
			p.HSet(ctx, s.TriageGroupsKey(partner), gfields...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index dead letters of %s: %w", partner, err)
	}
	return nil
}

// DeadAt is one dead letter's id and when it died.
type DeadAt struct {
	ID string
	At time.Time
}

// TriageSet is what the triage index holds of one partner.
type TriageSet struct {
	// Dead are the partner's dead letters that died at or after the time
	// asked for, oldest first.
	Dead []DeadAt
	// Entries are the indexed letters by id; some may no longer be dead.
	Entries map[string]TriageEntry
	// Groups are the partner's failure groups by id.
	Groups map[string]TriageGroup
}

// TriageRead reads partner's dead letters that died at or after since
// (zero: all) and its triage index, in one round trip.
func (s *Store) TriageRead(ctx context.Context, partner string, since time.Time) (*TriageSet, error) {
	lo, _ := scoreRange(since, time.Time{})
	var dead *redis.ZSliceCmd
	var entries, groups *redis.MapStringStringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		dead = p.ZRangeByScoreWithScores(ctx, s.DLQKey(partner), &redis.ZRangeBy{Min: lo, Max: "+inf"})
		entries = p.HGetAll(ctx, s.TriageKey(partner))
		groups = p.HGetAll(ctx, s.TriageGroupsKey(partner))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read triage of %s: %w", partner, err)
	}
	out := &TriageSet{
		Dead:    make([]DeadAt, len(dead.Val())),
		Entries: make(map[string]TriageEntry, len(entries.Val())),
		Groups:  make(map[string]TriageGroup, len(groups.Val())),
	}
	for i, z := range dead.Val() {
		id, _ := z.Member.(string)
		out.Dead[i] = DeadAt{ID: id, At: time.UnixMilli(int64(z.Score))}
	}
	for id, v := range entries.Val() {
		if e, ok := decodeTriageEntry(v); ok {
			out.Entries[id] = e
		}
	}
	for id, v := range groups.Val() {
		var g TriageGroup
		if json.Unmarshal([]byte(v), &g) == nil {
			out.Groups[id] = g
		}
	}
	return out, nil
}

// DropTriage removes ids, no longer dead letters, from partner's triage
// index, and the groups of gone that have no letter left.
func (s *Store) DropTriage(ctx context.Context, partner string, ids, gone []string) error {
	if len(ids) == 0 && len(gone) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for len(ids) > 0 {
			chunk := ids[:min(1000, len(ids))]
			ids = ids[len(chunk):]
			p.HDel(ctx, s.TriageKey(partner), chunk...)
		}
		if len(gone) > 0 {
			p.HDel(ctx, s.TriageGroupsKey(partner), gone...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("drop triage of %s: %w", partner, err)
	}
	return nil
}

// IsTriageGroups reports whether key is a partner's TriageGroupsKey.
func IsTriageGroups(key string) bool {
	_, rest, ok := KeyShard(key)
	return ok && strings.HasPrefix(rest, "trig:")
}

// RedactTriageGroups rewrites the groups of triage groups key whose
// description redact changes (an erasure's), and returns how many.
func (s *Store) RedactTriageGroups(ctx context.Context, key string, redact func(string) string) (int, error) {
	groups, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("read triage groups: %w", err)
	}
	changed := map[string]any{}
	for id, g := range groups {
		if r := redact(g); r != g {
			changed[id] = r
		}
	}
	if len(changed) == 0 {
		return 0, nil
	}
	if err := s.rdb.HSet(ctx, key, changed).Err(); err != nil {
		return 0, fmt.Errorf("erase from triage groups: %w", err)
	}
	return len(changed), nil
}
