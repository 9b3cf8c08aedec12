package store

import (
	"strconv"
	"strings"

	"github.com/postbackhq/postback/internal/wire"
)

// Keys start with their shard's prefix (see KeyPrefix), whose hash tag
// puts every key of the shard in one Redis Cluster slot: a script may then
// touch a delivery's record, its history, its partner's DLQ index and
// counters at once, as one atomic step. This is the trade asynq makes too
// (a queue's keys share the tag {queue}, so a queue lives on one node).
// With redis.shards: N, deliveries spread over N such slots.
//
// Prefix is shard 0's, the only one with one shard, and that of the keys
// that are not about deliveries (pauses, health, erasures, readiness),
// which live there whatever the number of shards.
const Prefix = "pb:{pb}:"

// KeyPrefix is the prefix of shard k's keys: Prefix for shard 0, else
// "pb:{<shard name>}:", the tag the shard's queue has too.
func KeyPrefix(k int) string {
	if k == 0 {
		return Prefix
	}
	return "pb:{" + wire.ShardName(k) + "}:"
}

// KeyShard returns the shard whose prefix key has, and the rest of key.
func KeyShard(key string) (k int, rest string, ok bool) {
	if rest, ok := strings.CutPrefix(key, Prefix); ok {
		return 0, rest, true
	}
	tagged, ok := strings.CutPrefix(key, "pb:{")
	if !ok {
		return 0, "", false
	}
	tag, rest, ok := strings.Cut(tagged, "}:")
	if !ok {
		return 0, "", false
	}
	k, replay, ok := wire.QueueShard(tag)
	if !ok || replay || k == 0 {
		return 0, "", false
	}
	return k, rest, true
}

// The per-shard keys, as methods of the shard's Store: a delivery's keys
// are in its shard's slot. The functions of the same names are shard 0's.

// EventKey is EventKey in s's shard.
func (s *Store) EventKey(id string) string { return s.p + "evt:" + id }

// ClaimKey is the key of event id's claim: in the shard of its id
// (EventShard), named EventKey with one shard placed into and
// "evt<N>:<id>" with N, so that a claim tells which layout placed its
// event's deliveries (see ClaimKeyIn).
func (s *Store) ClaimKey(id string) string { return s.ClaimKeyIn(id, s.set.placed) }

// ClaimKeyIn is ClaimKey in a layout of n shards.
func (s *Store) ClaimKeyIn(id string, n int) string {
	if n <= 1 {
		return Prefix + "evt:" + id
	}
	return s.Shard(wire.ShardOf(id, n)).p + "evt" + strconv.Itoa(n) + ":" + id
}

// DeliveryKey is DeliveryKey in s's shard.
func (s *Store) DeliveryKey(id string) string { return s.p + "d:" + id }

// AttemptsKey is AttemptsKey in s's shard.
func (s *Store) AttemptsKey(id string) string { return s.p + "a:" + id }

// LeaseKey is LeaseKey in s's shard.
func (s *Store) LeaseKey(id string) string { return s.p + "l:" + id }

// DLQKey is DLQKey in s's shard.
func (s *Store) DLQKey(partner string) string { return s.p + "dlq:" + partner }

// DLQPartnersKey is DLQPartnersKey in s's shard.
func (s *Store) DLQPartnersKey() string { return s.p + "dlq-partners" }

// StatsKey is StatsKey in s's shard.
func (s *Store) StatsKey(partner string, minute int64) string {
	return s.p + "st:" + partner + ":" + strconv.FormatInt(minute, 10)
}

// LatencyKey is LatencyKey in s's shard.
func (s *Store) LatencyKey(partner string) string { return s.p + "lat:" + partner }

// TriageKey is TriageKey in s's shard.
func (s *Store) TriageKey(partner string) string { return s.p + "tri:" + partner }

// TriageGroupsKey is TriageGroupsKey in s's shard.
func (s *Store) TriageGroupsKey(partner string) string { return s.p + "trig:" + partner }

// OrderKey is OrderKey in s's shard.
func (s *Store) OrderKey(partner, seq string) string { return s.p + "ord:" + partner + ":" + seq }

// DedupKey is DedupKey in s's shard.
func (s *Store) DedupKey(partner, key string) string {
	return s.p + "dd:" + partner + ":" + hashHex(key)
}

// TxKey is TxKey in s's shard.
func (s *Store) TxKey(partner, transactionID string) string {
	return s.p + "tx:" + partner + ":" + hashHex(transactionID)
}

// CancelKey is CancelKey in s's shard.
func (s *Store) CancelKey(id string) string { return s.p + "cx:" + id }

// EventKey de-duplicates event id for the dedup window (string: the
// deliveries of its receipt as JSON).
func EventKey(id string) string { return Prefix + "evt:" + id }

// DeliveryKey is a delivery's record (hash; see Record).
func DeliveryKey(id string) string { return Prefix + "d:" + id }

// AttemptsKey is a delivery's attempt history (list of JSON Attempt).
func AttemptsKey(id string) string { return Prefix + "a:" + id }

// LeaseKey is held by the attempt of delivery id under way, so that no
// two attempts of one delivery run at once (see Store.GetForAttempt).
func LeaseKey(id string) string { return Prefix + "l:" + id }

// DLQKey indexes a partner's dead letters (sorted set of delivery ids,
// scored by the time they died in Unix milliseconds).
func DLQKey(partner string) string { return Prefix + "dlq:" + partner }

// DLQPartnersKey is the set of partners that have, or had, dead letters.
const DLQPartnersKey = Prefix + "dlq-partners"

// StatsKey counts a partner's outcomes in one minute (hash: attempts, ok,
// delivered, dead), minute being Unix time / 60. It expires after
// statsTTL.
func StatsKey(partner string, minute int64) string {
	return Prefix + "st:" + partner + ":" + strconv.FormatInt(minute, 10)
}

// LatencyKey holds a partner's most recent attempt durations (list of
// "unix-ms:microseconds", newest first, capped at LatencySamples).
func LatencyKey(partner string) string { return Prefix + "lat:" + partner }

// ReplSyncKey is a counter that WaitReplicas increments: a write of its
// own, whose replication offset is past every write the master had
// answered before it.
const ReplSyncKey = Prefix + "replsync"

// RateLimitKey is the Redis key of partner id's rate-limit state, shared
// by every worker (redis_rate puts its own "rate:" in front).
func RateLimitKey(id string) string { return Prefix + "rl:{" + id + "}" }

// ReadyKey is the key /readyz writes to learn whether Redis takes writes
// (string: the Unix time in milliseconds of the write, with a TTL).
const ReadyKey = Prefix + "readyz"

// PausedKey holds the partners paused now (hash: partner id → JSON
// Pause). Every worker reads it once a second.
const PausedKey = Prefix + "paused"

// PausedPastKey holds the pauses that ended (hash: partner id →
// "start-end,…" in Unix milliseconds, newest first, at most
// PastPauses), so that max_age can leave out the time a partner was
// paused.
const PausedPastKey = Prefix + "paused-past"

// FailsKey counts each partner's failed attempts in a row, across every
// worker (hash: partner id → count); a success or an auto-pause clears it.
const FailsKey = Prefix + "fails"

// FailingKey holds the partners reported failing (hash: partner id →
// Unix ms since when), until their first success.
const FailingKey = Prefix + "failing"

// DLQEventKey is set once a partner's dead letters of the minute starting
// at start (Unix ms) are to be gathered into one dlq.dead_lettered event.
func DLQEventKey(partner string, start int64) string {
	return Prefix + "dlqev:" + partner + ":" + strconv.FormatInt(start, 10)
}

// TriageKey indexes a partner's dead letters by failure fingerprint
// (hash: delivery id → "group|amount|currency").
func TriageKey(partner string) string { return Prefix + "tri:" + partner }

// TriageGroupsKey describes a partner's failure groups (hash: group id →
// JSON TriageGroup: what the group is and its latest sample).
func TriageGroupsKey(partner string) string { return Prefix + "trig:" + partner }
