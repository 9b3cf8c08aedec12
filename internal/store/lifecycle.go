package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The keys of a conversion's lifecycle. A value that may be personal (a
// click id, a transaction id, a dedup key holding an email) is hashed
// into its key, never kept in clear.

// Seq names the sequence of a partner's deliveries ordered by value (a
// click id or a transaction id): a hash of it, so the value itself is not
// kept.
func Seq(value string) string { return hashHex(value) }

// OrderKey is the sequence seq of partner's ordered deliveries (list, in
// the order their events were accepted, of each one's id, followed by a
// space and the id of the task that holds it when that is not the
// delivery's own: a bundle's).
func OrderKey(partner, seq string) string { return Prefix + "ord:" + partner + ":" + seq }

// DedupKey is a partner's ledger entry for one rendered dedup key
// (string: the id of the delivery that holds it, "d:" and the id once it
// was delivered).
func DedupKey(partner, key string) string { return Prefix + "dd:" + partner + ":" + hashHex(key) }

// TxKey holds the held deliveries of one transaction id to partner that
// a rejection may cancel (set of delivery ids).
func TxKey(partner, transactionID string) string {
	return Prefix + "tx:" + partner + ":" + hashHex(transactionID)
}

// CancelKey marks delivery id cancelled before its first attempt by a
// rejection (string: the id of the delivery it was cancelled with).
func CancelKey(id string) string { return Prefix + "cx:" + id }

// hashHex names a value in a key: 96 bits of its SHA-256, in 16
// characters of base64url (every pending delivery of an ordered partner
// carries one).
func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// leaveLua removes delivery id's entry from sequence key; it is part of
// every outcome write that makes a delivery final. isLua says whether
// entry e is delivery id's.
const leaveLua = isLua + `
local function leave(key, id)
  for _, e in ipairs(redis.call("LRANGE", key, 0, -1)) do
    if is(e, id) then
      redis.call("LREM", key, 1, e)
      return
    end
  end
end
`

const isLua = `
local function is(e, id)
  return e == id or string.sub(e, 1, #id + 1) == id .. " "
end
`

// orderJoinScript appends a delivery to its sequence, once.
//
// KEYS[1] sequence  ARGV[1] delivery id  ARGV[2] task id  ARGV[3] TTL (ms)
var orderJoinScript = redis.NewScript(isLua + `
for _, e in ipairs(redis.call("LRANGE", KEYS[1], 0, -1)) do
  if is(e, ARGV[1]) then return 0 end
end
local entry = ARGV[1]
if ARGV[2] ~= ARGV[1] then entry = entry .. " " .. ARGV[2] end
redis.call("RPUSH", KEYS[1], entry)
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return 1
`)

// OrderJoin appends delivery id, stored in task taskID, to the sequence
// key, unless it is in it already (a repeat of its event). The sequence
// lives ttl after its last join.
func (s *Store) OrderJoin(ctx context.Context, key, id, taskID string, ttl time.Duration) error {
	if err := orderJoinScript.Run(ctx, s.rdb, []string{key}, id, taskID, ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("join sequence: %w", err)
	}
	return nil
}

// Join is one delivery to add to its sequence (see OrderJoin).
type Join struct{ Seq, ID, TaskID string }

// OrderJoinAll is OrderJoin of every join, in one pipeline: a bundle's.
func (s *Store) OrderJoinAll(ctx context.Context, joins []Join, ttl time.Duration) error {
	if len(joins) == 1 {
		return s.OrderJoin(ctx, joins[0].Seq, joins[0].ID, joins[0].TaskID, ttl)
	}
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, j := range joins {
			orderJoinScript.Eval(ctx, p, []string{j.Seq}, j.ID, j.TaskID, ttl.Milliseconds())
		}
		return nil
	})
	if err == nil {
		for _, c := range cmds {
			if err = c.Err(); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("join sequences: %w", err)
	}
	return nil
}

// Turn is where a delivery stands in its sequence.
type Turn struct {
	// Blocker is the earliest delivery before it that is not final, ""
	// when it may go: every earlier one is final, or it is in no sequence
	// (a replay, or a sequence that expired).
	Blocker string
	// BlockerTask is the task the blocker was stored in;
	// BlockerStatus its record's status, "" when it has none: it was never
	// attempted.
	BlockerTask, BlockerStatus string
}

// orderTurnScript finds the first delivery before ARGV[1] in sequence
// KEYS[1] that is not final, dropping the final ones it passes.
//
// KEYS[1] sequence  ARGV[1] delivery id  ARGV[2] record key prefix
// Returns {} when it may go, or {blocker id, its task id, its status}.
var orderTurnScript = redis.NewScript(turnLua + `
return turn(KEYS[1], ARGV[1], ARGV[2])
`)

// turnLua is orderTurnScript's work, which readForAttemptScript does too.
const turnLua = isLua + `
local function turn(key, me, prefix)
  local entries = redis.call("LRANGE", key, 0, -1)
  local mine = false
  for _, e in ipairs(entries) do
    if is(e, me) then mine = true break end
  end
  if not mine then return {} end
  for _, e in ipairs(entries) do
    if is(e, me) then return {} end
    local sp = string.find(e, " ", 1, true)
    local id, task = e, e
    if sp then id, task = string.sub(e, 1, sp - 1), string.sub(e, sp + 1) end
    local st = redis.call("HGET", prefix .. id, "status") or ""
    -- Status.Final's statuses
    if st == "delivered" or st == "dead" or st == "skipped" or st == "purged" then
      redis.call("LREM", key, 1, e)
    else
      return {id, task, st}
    end
  end
  return {}
end
`

// OrderTurn says whether delivery id may be attempted now: whether every
// delivery before it in sequence key is final.
func (s *Store) OrderTurn(ctx context.Context, key, id string) (Turn, error) {
	v, err := orderTurnScript.Run(ctx, s.rdb, []string{key}, id, s.p+"d:").StringSlice()
	if err != nil {
		return Turn{}, fmt.Errorf("read sequence: %w", err)
	}
	if len(v) != 3 {
		return Turn{}, nil
	}
	return Turn{Blocker: v[0], BlockerTask: v[1], BlockerStatus: v[2]}, nil
}

// orderDropScript drops a delivery from its sequence if it still has no
// record: it was found stranded, with no task left to run it.
//
// KEYS[1] sequence  KEYS[2] its record  ARGV[1] delivery id
var orderDropScript = redis.NewScript(leaveLua + `
if redis.call("EXISTS", KEYS[2]) == 1 then return 0 end
leave(KEYS[1], ARGV[1])
return 1
`)

// OrderDrop removes delivery id from sequence key when it has no record,
// and reports whether it did.
func (s *Store) OrderDrop(ctx context.Context, key, id string) (bool, error) {
	n, err := orderDropScript.Run(ctx, s.rdb, []string{key, s.DeliveryKey(id)}, id).Int()
	if err != nil {
		return false, fmt.Errorf("drop from sequence: %w", err)
	}
	return n == 1, nil
}

// TaskExists reports whether asynq holds a task with any of ids in any of
// queues (pending, scheduled, retrying or active).
func (s *Store) TaskExists(ctx context.Context, queues []string, ids ...string) (bool, error) {
	var keys []string
	for _, q := range queues {
		for _, id := range ids {
			if id != "" {
				keys = append(keys, AsynqTaskPrefix(q)+id)
			}
		}
	}
	// One key a call: on a cluster, the queues' keys live in different slots.
	for _, k := range keys {
		n, err := s.rdb.Exists(ctx, k).Result()
		if err != nil {
			return false, fmt.Errorf("look for task: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}

// dedupClaimScript takes a partner's dedup ledger entry for a delivery,
// unless another delivery holds it: delivered, or not final. A holder
// with no record yet is not final: it is being attempted, or deferred,
// or its worker died in its first attempt, whose request may have
// reached the partner; its task runs it again. Only a holder that ended
// dead, skipped or purged frees the entry.
//
// KEYS[1] ledger entry  ARGV[1] delivery id  ARGV[2] TTL (ms)
// ARGV[3] record key prefix
// Returns "" when taken, or the holder's id.
var dedupClaimScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v then
  local holder = v
  local done = string.sub(v, 1, 2) == "d:"
  if done then holder = string.sub(v, 3) end
  if holder == ARGV[1] then return "" end
  if done then return holder end
  local st = redis.call("HGET", ARGV[3] .. holder, "status")
  if st == "delivered" then
    redis.call("SET", KEYS[1], "d:" .. holder, "KEEPTTL")
    return holder
  end
  if st ~= "dead" and st ~= "skipped" and st ~= "purged" then return holder end
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return ""
`)

// ClaimDedup takes ledger entry key for delivery id for ttl, or returns
// the id of the delivery that holds it: delivered, or being attempted.
// The same delivery retried or replayed holds it already.
func (s *Store) ClaimDedup(ctx context.Context, key, id string, ttl time.Duration) (holder string, err error) {
	holder, err = dedupClaimScript.Run(ctx, s.rdb, []string{key}, id, ttl.Milliseconds(), s.p+"d:").Text()
	if err != nil && !isNil(err) {
		return "", fmt.Errorf("claim dedup key: %w", err)
	}
	return holder, nil
}

// HoldForCancel records delivery id, held by its partner's delay, in the
// held set txKey of its transaction, which a rejection may cancel until
// ttl.
func (s *Store) HoldForCancel(ctx context.Context, txKey, id string, ttl time.Duration) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, txKey, id)
		p.PExpire(ctx, txKey, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("hold delivery: %w", err)
	}
	return nil
}

// cancelScript cancels the held deliveries of a transaction that were
// never attempted (no record, no lease), and, when it cancelled any, the
// rejection itself.
//
// KEYS[1] the transaction's held set  ARGV[1] the rejection's delivery id
// ARGV[2] record key prefix  ARGV[3] lease key prefix  ARGV[4] cancel key
// prefix  ARGV[5] TTL of the marks (ms)
// Returns the ids cancelled.
var cancelScript = redis.NewScript(`
local out = {}
for _, id in ipairs(redis.call("SMEMBERS", KEYS[1])) do
  if id ~= ARGV[1] and redis.call("EXISTS", ARGV[2] .. id) == 0 and redis.call("EXISTS", ARGV[3] .. id) == 0 then
    redis.call("SET", ARGV[4] .. id, ARGV[1], "PX", ARGV[5])
    redis.call("SREM", KEYS[1], id)
    table.insert(out, id)
  end
end
if #out > 0 then
  redis.call("SET", ARGV[4] .. ARGV[1], out[1], "PX", ARGV[5])
end
return out
`)

// CancelHeld cancels, with rejection (a delivery of a rejected event),
// the deliveries of txKey that are still held, and returns them; when
// there are any, rejection is cancelled too.
func (s *Store) CancelHeld(ctx context.Context, txKey, rejection string, ttl time.Duration) ([]string, error) {
	ids, err := cancelScript.Run(ctx, s.rdb, []string{txKey}, rejection, s.p+"d:", s.p+"l:", s.p+"cx:", ttl.Milliseconds()).StringSlice()
	if err != nil && !isNil(err) {
		return nil, fmt.Errorf("cancel held deliveries: %w", err)
	}
	return ids, nil
}

// Cancelled returns the delivery that delivery id was cancelled with, ""
// when it was not.
func (s *Store) Cancelled(ctx context.Context, id string) (string, error) {
	by, err := s.rdb.Get(ctx, s.CancelKey(id)).Result()
	if err != nil && !isNil(err) {
		return "", fmt.Errorf("read cancellation: %w", err)
	}
	return by, nil
}

// skipScript records a delivery skipped on purpose, counts it by its
// reason code and takes it out of its sequence.
//
// KEYS[1] delivery key  KEYS[2] lease key  KEYS[3] stats bucket  KEYS[4]
// sequence (or KEYS[1] when none)
// ARGV[1] reason  ARGV[2] partner  ARGV[3] event id  ARGV[4] now (ms)
// ARGV[5] retention (ms)  ARGV[6] lease token ("" = none)  ARGV[7] reason
// code  ARGV[8] stats TTL (ms)  ARGV[9] delivery id  ARGV[10] "1" when
// KEYS[4] is a sequence
var skipScript = redis.NewScript(leaveLua + `
redis.call("HSET", KEYS[1], "status", "skipped", "reason", ARGV[1], "partner", ARGV[2],
  "event", ARGV[3], "updated", ARGV[4])
redis.call("PEXPIRE", KEYS[1], ARGV[5])
if ARGV[6] ~= "" and redis.call("GET", KEYS[2]) == ARGV[6] then
  redis.call("DEL", KEYS[2])
end
redis.call("HINCRBY", KEYS[3], "skipped", 1)
if ARGV[7] ~= "" then
  redis.call("HINCRBY", KEYS[3], "skip:" .. ARGV[7], 1)
end
redis.call("PEXPIRE", KEYS[3], ARGV[8])
if ARGV[10] == "1" then leave(KEYS[4], ARGV[9]) end
return nil
`)

// Skip records delivery m skipped with reason, counted under code in its
// partner's stats (a lifecycle reason such as outside_window, or "" for
// the others), freeing m.Lease and leaving m.Order.
func (s *Store) Skip(ctx context.Context, m Meta, reason, code string, now time.Time, retention time.Duration) error {
	seq, isSeq := s.DeliveryKey(m.ID), ""
	if m.Order != "" {
		seq, isSeq = m.Order, "1"
	}
	keys := []string{s.DeliveryKey(m.ID), s.LeaseKey(m.ID), s.StatsKey(m.Partner, now.Unix()/60), seq}
	err := skipScript.Run(ctx, s.rdb, keys, reason, m.Partner, m.EventID, now.UnixMilli(), retention.Milliseconds(),
		m.Lease, code, statsTTL.Milliseconds(), m.ID, isSeq).Err()
	if err != nil && !isNil(err) {
		return fmt.Errorf("record skip: %w", err)
	}
	return nil
}
