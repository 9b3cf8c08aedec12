package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Locate returns, for each delivery id, the store of the shard that holds
// its record, or nil when no shard does. With one shard it reads nothing
// and names shard 0 for every id, found or not: every record is there.
// Otherwise it is one pipeline over every shard (which a cluster client
// sends to each master at once).
func (s *Store) Locate(ctx context.Context, ids []string) ([]*Store, error) {
	out := make([]*Store, len(ids))
	all := s.All()
	if len(all) == 1 {
		for i := range out {
			out[i] = all[0]
		}
		return out, nil
	}
	cmds := make([][]*redis.IntCmd, len(all))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, sh := range all {
			cmds[k] = make([]*redis.IntCmd, len(ids))
			for i, id := range ids {
				cmds[k][i] = p.Exists(ctx, sh.DeliveryKey(id))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find delivery records: %w", err)
	}
	for k, sh := range all {
		for i := range ids {
			if out[i] == nil && cmds[k][i].Val() > 0 {
				out[i] = sh
			}
		}
	}
	return out, nil
}

// Find returns the store of the shard that holds delivery id's record,
// or ErrNotFound.
func (s *Store) Find(ctx context.Context, id string) (*Store, error) {
	at, err := s.Locate(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if at[0] == nil {
		return nil, ErrNotFound
	}
	return at[0], nil
}

// TriageReadAll is TriageRead of partner in every shard, as one set:
// Dead merged oldest first, Entries and Groups together. Shard records
// which shard each dead letter is in.
func (s *Store) TriageReadAll(ctx context.Context, partner string, since time.Time) (*TriageSet, map[string]int, error) {
	all := s.All()
	if len(all) == 1 {
		set, err := all[0].TriageRead(ctx, partner, since)
		return set, nil, err
	}
	out := &TriageSet{Entries: map[string]TriageEntry{}, Groups: map[string]TriageGroup{}}
	shard := map[string]int{}
	for _, sh := range all {
		set, err := sh.TriageRead(ctx, partner, since)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range set.Dead {
			shard[d.ID] = sh.shard
		}
		out.Dead = append(out.Dead, set.Dead...)
		maps.Copy(out.Entries, set.Entries)
		maps.Copy(out.Groups, set.Groups)
	}
	slices.SortStableFunc(out.Dead, func(a, b DeadAt) int { return a.At.Compare(b.At) })
	return out, shard, nil
}

// GetAny returns the record of delivery id in whichever shard holds it,
// and that shard's store, or ErrNotFound.
func (s *Store) GetAny(ctx context.Context, id string) (*Record, *Store, error) {
	st, err := s.Find(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	rec, err := st.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return rec, st, nil
}

// GetDeadLetterAny is GetDeadLetter in whichever shard holds id, with
// that shard's store.
func (s *Store) GetDeadLetterAny(ctx context.Context, id string) (*DeadLetter, *Store, error) {
	st, err := s.Find(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	dl, err := st.GetDeadLetter(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return dl, st, nil
}

// DLQPartnersAll is DLQPartners of every shard, together, sorted.
func (s *Store) DLQPartnersAll(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, sh := range s.All() {
		ps, err := sh.DLQPartners(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if !seen[p] {
				seen[p], out = true, append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// Dead is one dead letter's place: its id, shard and when it died.
type Dead struct {
	ID    string
	Shard int
	At    time.Time
}

// DeadAll returns the dead letters of partner that died in [from, to]
// (zero times are open ends) in every shard, oldest first.
func (s *Store) DeadAll(ctx context.Context, partner string, from, to time.Time) ([]Dead, error) {
	lo, hi := scoreRange(from, to)
	var out []Dead
	for _, sh := range s.All() {
		const page = 5000
		for off := int64(0); ; off += page {
			zs, err := sh.rdb.ZRangeByScoreWithScores(ctx, sh.DLQKey(partner), &redis.ZRangeBy{Min: lo, Max: hi, Offset: off, Count: page}).Result()
			if err != nil {
				return nil, fmt.Errorf("dlq ids: %w", err)
			}
			for _, z := range zs {
				id, _ := z.Member.(string)
				out = append(out, Dead{ID: id, Shard: sh.shard, At: time.UnixMilli(int64(z.Score))})
			}
			if len(zs) < page {
				break
			}
		}
	}
	if len(s.All()) > 1 {
		slices.SortStableFunc(out, func(a, b Dead) int { return a.At.Compare(b.At) })
	}
	return out, nil
}

// ListDeadAll is ListDead over every shard: the dead letters q selects,
// newest first, the shards' lists merged by when each letter died.
func (s *Store) ListDeadAll(ctx context.Context, q DeadQuery) ([]*DeadLetter, error) {
	all := s.All()
	if len(all) == 1 {
		return all[0].ListDead(ctx, q)
	}
	var out []*DeadLetter
	for _, sh := range all {
		dls, err := sh.ListDead(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, dls...)
	}
	slices.SortStableFunc(out, func(a, b *DeadLetter) int { return b.DeadAt.Compare(a.DeadAt) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// CountsAll is Counts of partner summed over every shard.
func (s *Store) CountsAll(ctx context.Context, partner string, now time.Time, span time.Duration) (Counts, error) {
	var sum Counts
	for _, sh := range s.All() {
		c, err := sh.Counts(ctx, partner, now, span)
		if err != nil {
			return Counts{}, err
		}
		sum.Attempts += c.Attempts
		sum.OK += c.OK
		sum.Delivered += c.Delivered
		sum.Dead += c.Dead
		sum.Skipped += c.Skipped
		sum.Duplicate += c.Duplicate
		for k, v := range c.SkippedBy {
			if sum.SkippedBy == nil {
				sum.SkippedBy = map[string]int64{}
			}
			sum.SkippedBy[k] += v
		}
	}
	return sum, nil
}

// LatenciesAll is Latencies of partner in every shard together (each
// shard keeps its own LatencySamples most recent).
func (s *Store) LatenciesAll(ctx context.Context, partner string, since time.Time) ([]time.Duration, error) {
	var out []time.Duration
	for _, sh := range s.All() {
		l, err := sh.Latencies(ctx, partner, since)
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	return out, nil
}

// DLQSizeAll is DLQSize of partner summed over every shard.
func (s *Store) DLQSizeAll(ctx context.Context, partner string) (int64, error) {
	var n int64
	for _, sh := range s.All() {
		m, err := sh.DLQSize(ctx, partner)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}

// ClaimsIn reads the claims of event ids as a layout of n shards wrote
// them (ClaimKeyIn), in one pipeline; nil for an event with none.
func (s *Store) ClaimsIn(ctx context.Context, ids []string, n int) ([][]byte, error) {
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.ClaimKeyIn(id, n))
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return nil, fmt.Errorf("read claims: %w", err)
	}
	out := make([][]byte, len(ids))
	for i, c := range cmds {
		if b, err := c.Bytes(); err == nil {
			out[i] = b
		}
	}
	return out, nil
}
