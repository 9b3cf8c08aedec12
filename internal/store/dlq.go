package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/retry"
)

// DeadLetter is one entry of a partner's dead-letter queue: the delivery's
// record (reason, last status and error, attempt count, first and last
// attempt times, URL last sent) and the full task payload it can be
// replayed from.
type DeadLetter struct {
	*Record
	Payload []byte `json:"-"`
}

// DLQPartners returns the partners that have or had dead letters, sorted.
func (s *Store) DLQPartners(ctx context.Context) ([]string, error) {
	ps, err := s.rdb.SMembers(ctx, s.DLQPartnersKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("dlq partners: %w", err)
	}
	slices.Sort(ps)
	return ps, nil
}

// DLQSize returns the number of dead letters of partner.
func (s *Store) DLQSize(ctx context.Context, partner string) (int64, error) {
	n, err := s.rdb.ZCard(ctx, s.DLQKey(partner)).Result()
	if err != nil {
		return 0, fmt.Errorf("dlq size: %w", err)
	}
	return n, nil
}

// DeadIDs returns the ids of partner's dead letters that died in
// [from, to] (zero times are open ends), oldest first. It reads in pages,
// so a large DLQ is not one huge reply.
func (s *Store) DeadIDs(ctx context.Context, partner string, from, to time.Time) ([]string, error) {
	lo, hi := scoreRange(from, to)
	const page = 5000
	var out []string
	for off := int64(0); ; off += page {
		ids, err := s.rdb.ZRangeByScore(ctx, s.DLQKey(partner), &redis.ZRangeBy{Min: lo, Max: hi, Offset: off, Count: page}).Result()
		if err != nil {
			return nil, fmt.Errorf("dlq ids: %w", err)
		}
		out = append(out, ids...)
		if len(ids) < page {
			return out, nil
		}
	}
}

func scoreRange(from, to time.Time) (lo, hi string) {
	lo, hi = "-inf", "+inf"
	if !from.IsZero() {
		lo = strconv.FormatInt(from.UnixMilli(), 10)
	}
	if !to.IsZero() {
		hi = strconv.FormatInt(to.UnixMilli(), 10)
	}
	return lo, hi
}

// GetDead returns the dead letters among ids, in the order given; ids
// that are not (or no longer) dead letters are left out.
func (s *Store) GetDead(ctx context.Context, ids []string) ([]*DeadLetter, error) {
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.DeliveryKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get dead letters: %w", err)
	}
	out := make([]*DeadLetter, 0, len(ids))
	for i, c := range cmds {
		m := c.Val()
		// A dead letter has its payload; "queued" with a payload is one
		// whose replay was claimed but not settled (still in the DLQ).
		st := retry.Status(m["status"])
		if m["payload"] == "" || (st != retry.StatusDead && st != retry.StatusQueued) {
			continue
		}
		out = append(out, &DeadLetter{Record: parseRecord(ids[i], m), Payload: []byte(m["payload"])})
	}
	return out, nil
}

// GetDeadLetter returns the dead letter id, or ErrNotFound when it is not
// in a DLQ.
func (s *Store) GetDeadLetter(ctx context.Context, id string) (*DeadLetter, error) {
	dl, err := s.GetDead(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if len(dl) == 0 {
		return nil, ErrNotFound
	}
	return dl[0], nil
}

// DeadQuery selects dead letters for ListDead.
type DeadQuery struct {
	// Partner limits the list to one partner; "" means every partner.
	Partner string
	// Reason keeps only dead letters with this reason; "" means any.
	Reason string
	// Since keeps only those that died at or after it; zero means any time.
	Since time.Time
	// Limit caps the answer; 0 means no cap.
	Limit int
}

// ListDead returns dead letters matching q, newest first.
func (s *Store) ListDead(ctx context.Context, q DeadQuery) ([]*DeadLetter, error) {
	partners := []string{q.Partner}
	if q.Partner == "" {
		var err error
		if partners, err = s.DLQPartners(ctx); err != nil {
			return nil, err
		}
	}
	lo, _ := scoreRange(q.Since, time.Time{})
	const page = 1000
	var out []*DeadLetter
	for _, p := range partners {
		kept := 0
		for off := int64(0); ; off += page {
			ids, err := s.rdb.ZRevRangeByScore(ctx, s.DLQKey(p), &redis.ZRangeBy{Min: lo, Max: "+inf", Offset: off, Count: page}).Result()
			if err != nil {
				return nil, fmt.Errorf("list dead letters: %w", err)
			}
			dls, err := s.GetDead(ctx, ids)
			if err != nil {
				return nil, err
			}
			for _, d := range dls {
				if q.Reason == "" || d.Reason == q.Reason {
					out = append(out, d)
					kept++
				}
			}
			if len(ids) < page || (q.Limit > 0 && kept >= q.Limit) {
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DeadAt.After(out[j].DeadAt) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// replayClaimScript takes a dead letter out of the dead state for a
// replay, leaving it in the DLQ index until SettleReplay confirms the new
// task is enqueued: a crash in between leaves it visible (status queued)
// and replayable, never lost. The attempt count starts again.
//
// KEYS[1] delivery key  KEYS[2] partner DLQ index
// ARGV[1] delivery id   ARGV[2] now (ms)
// Returns {"claimed", payload}, {"gone"} when it is no longer a dead
// letter, or {"moved"} when it had already left the dead state (an
// earlier replay that was not settled): the index entry is then dropped.
var replayClaimScript = redis.NewScript(`
if not redis.call("ZSCORE", KEYS[2], ARGV[1]) then
  return {"gone"}
end
local st = redis.call("HMGET", KEYS[1], "status", "payload")
if st[1] == "dead" or st[1] == "queued" then
  if not st[2] then
    return redis.error_reply("dead letter " .. ARGV[1] .. " has no payload")
  end
  redis.call("HSET", KEYS[1], "status", "queued", "attempts", 0, "updated", ARGV[2])
  redis.call("HINCRBY", KEYS[1], "replays", 1)
  return {"claimed", st[2]}
end
redis.call("ZREM", KEYS[2], ARGV[1])
return {"moved"}
`)

// ReplayClaim is the answer to ClaimReplay for one id.
type ReplayClaim struct {
	ID      string
	Claimed bool   // false: not a dead letter (any more); nothing to do
	Payload []byte // the task payload, when Claimed
	Err     error
}

// ClaimReplay moves each dead letter of partner in ids to status queued
// for a replay (see replayClaimScript), in one pipeline.
func (s *Store) ClaimReplay(ctx context.Context, partner string, ids []string, now time.Time) ([]ReplayClaim, error) {
	if err := replayClaimScript.Load(ctx, s.rdb).Err(); err != nil {
		return nil, fmt.Errorf("claim replay: %w", err)
	}
	cmds := make([]*redis.Cmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = replayClaimScript.EvalSha(ctx, p, []string{s.DeliveryKey(id), s.DLQKey(partner)}, id, now.UnixMilli())
		}
		return nil
	})
	if err != nil && !anyScriptError(cmds) {
		return nil, fmt.Errorf("claim replay: %w", err)
	}
	out := make([]ReplayClaim, len(ids))
	for i, c := range cmds {
		out[i].ID = ids[i]
		vals, err := c.Slice()
		if err != nil {
			out[i].Err = err
			continue
		}
		if len(vals) == 2 && vals[0] == "claimed" {
			p, _ := vals[1].(string)
			out[i].Claimed, out[i].Payload = true, []byte(p)
		}
	}
	return out, nil
}

// anyScriptError reports whether the pipeline error is a per-command one
// (a script's error reply) rather than a connection failure.
func anyScriptError(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		var re redis.Error
		if c != nil && errors.As(c.Err(), &re) && !isNil(c.Err()) {
			return true
		}
	}
	return false
}

// replaySettleScript ends a replay of a claimed dead letter. When its task
// was enqueued (or the delivery has moved on: retrying, delivered,
// skipped, purged), it leaves the DLQ and its record expires with the
// attempt log again. When the enqueue failed and nothing happened since,
// it goes back to dead, still in the DLQ. A delivery that died again in
// the meantime stays, with its new dead letter.
//
// KEYS[1] delivery key  KEYS[2] attempts key  KEYS[3] partner DLQ index
// ARGV[1] delivery id   ARGV[2] "1" when the task was enqueued
// ARGV[3] retention (ms)
// Returns "removed", "reverted" or "dead".
var replaySettleScript = redis.NewScript(`
local st = redis.call("HGET", KEYS[1], "status")
if st == "dead" then
  return "dead"
end
if st == "queued" and ARGV[2] ~= "1" then
  redis.call("HSET", KEYS[1], "status", "dead")
  return "reverted"
end
redis.call("ZREM", KEYS[3], ARGV[1])
if st then
  redis.call("HDEL", KEYS[1], "payload", "dead_at")
  if st ~= "skipped" and st ~= "purged" then
    redis.call("HDEL", KEYS[1], "reason")
  end
  redis.call("PEXPIRE", KEYS[1], ARGV[3])
  redis.call("PEXPIRE", KEYS[2], ARGV[3])
end
return "removed"
`)

// SettleReplay ends the replay of each claimed id of partner:
// enqueued[i] tells whether ids[i]'s task was enqueued. It returns how
// many left the DLQ.
func (s *Store) SettleReplay(ctx context.Context, partner string, ids []string, enqueued []bool, retention time.Duration) (int, error) {
	if err := replaySettleScript.Load(ctx, s.rdb).Err(); err != nil {
		return 0, fmt.Errorf("settle replay: %w", err)
	}
	cmds := make([]*redis.Cmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			flag := "0"
			if enqueued[i] {
				flag = "1"
			}
			cmds[i] = replaySettleScript.EvalSha(ctx, p, []string{s.DeliveryKey(id), s.AttemptsKey(id), s.DLQKey(partner)}, id, flag, retention.Milliseconds())
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("settle replay: %w", err)
	}
	n := 0
	for _, c := range cmds {
		if c.Val() == "removed" {
			n++
		}
	}
	return n, nil
}

// purgeScript removes a dead letter for good: it leaves the DLQ index, its
// record becomes "purged" (so a stray task for it sends nothing) without
// its payload, and the record and history expire with the attempt log.
//
// KEYS[1] delivery key  KEYS[2] attempts key  KEYS[3] partner DLQ index
// ARGV[1] delivery id   ARGV[2] now (ms)      ARGV[3] retention (ms)
// Returns 1 when it removed a dead letter, else 0.
var purgeScript = redis.NewScript(`
if redis.call("ZREM", KEYS[3], ARGV[1]) == 0 then
  return 0
end
local st = redis.call("HGET", KEYS[1], "status")
if st == "dead" or st == "queued" then
  redis.call("HSET", KEYS[1], "status", "purged", "updated", ARGV[2])
  redis.call("HDEL", KEYS[1], "payload")
end
redis.call("PEXPIRE", KEYS[1], ARGV[3])
redis.call("PEXPIRE", KEYS[2], ARGV[3])
return 1
`)

// Purge removes the dead letters ids of partner (see purgeScript) and
// returns how many it removed.
func (s *Store) Purge(ctx context.Context, partner string, ids []string, now time.Time, retention time.Duration) (int, error) {
	const batch = 1000
	n := 0
	for len(ids) > 0 {
		chunk := ids[:min(batch, len(ids))]
		ids = ids[len(chunk):]
		if err := purgeScript.Load(ctx, s.rdb).Err(); err != nil {
			return n, fmt.Errorf("purge: %w", err)
		}
		cmds := make([]*redis.Cmd, len(chunk))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range chunk {
				cmds[i] = purgeScript.EvalSha(ctx, p, []string{s.DeliveryKey(id), s.AttemptsKey(id), s.DLQKey(partner)}, id, now.UnixMilli(), retention.Milliseconds())
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("purge: %w", err)
		}
		for _, c := range cmds {
			if v, _ := c.Int(); v == 1 {
				n++
			}
		}
	}
	return n, nil
}

// PartnerOf returns the partner of delivery id, or ErrNotFound.
func (s *Store) PartnerOf(ctx context.Context, id string) (string, error) {
	p, err := s.rdb.HGet(ctx, s.DeliveryKey(id), "partner").Result()
	if isNil(err) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("get delivery: %w", err)
	}
	return p, nil
}
