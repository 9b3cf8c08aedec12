package store

import "strconv"

// All keys start with Prefix, whose hash tag {pb} puts every key of ours in
// one Redis Cluster slot: a script may then touch a delivery's record, its
// history, its partner's DLQ index and counters at once, as one atomic
// step. This is the trade asynq makes too (a queue's keys share the tag
// {queue}, so a queue lives on one node); spreading our keys wider would
// not let a cluster carry more than the queue's node can.
const Prefix = "pb:{pb}:"

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
