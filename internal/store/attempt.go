package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/retry"
)

// statsTTL is how long a per-minute stats bucket lives: an hour is read,
// the rest is slack for clocks and slow readers.
const statsTTL = 2 * time.Hour

// LatencySamples is how many recent attempt durations are kept per partner
// for the p50/p99 of `postback stats`.
const LatencySamples = 1000

// recordScript is every outcome write of a delivery, so that an attempt,
// the status it leads to, the partner's counters and (when it dies) the
// dead letter change together or not at all.
//
// KEYS[1] delivery key      KEYS[2] attempts key
// KEYS[3] stats bucket key  KEYS[4] latency key
// KEYS[5] partner DLQ index KEYS[6] DLQ partners set
// ARGV[1] status  ARGV[2] partner  ARGV[3] event id  ARGV[4] now (ms)
// ARGV[5] retention (ms)  ARGV[6] stats TTL (ms)
// ARGV[7] attempt JSON ("" = no attempt to record)
// ARGV[8] attempt time (ms)  ARGV[9] HTTP status  ARGV[10] error (also
// without an attempt: why the delivery ended)  ARGV[11] url
// ARGV[12] latency sample ("" = none: nothing was sent)  ARGV[13] samples kept
// ARGV[14] "1" when the attempt succeeded
// ARGV[15] dead-letter reason ("" = not dead)  ARGV[16] task payload
// ARGV[17] delivery id
// KEYS[7] lease key  ARGV[18] lease token ("" = none): freed if it holds it
// ARGV[19] the counter a delivered record adds to: "delivered", or
// "duplicate" when the partner said it had the conversion already (also
// kept as the record's outcome)
// KEYS[8] dedup ledger entry  ARGV[20] its TTL (ms; "" = none): marked
// delivered when the delivery holds it and is delivered
// KEYS[9] sequence  ARGV[21] "1" when KEYS[9] is one: left when final
// KEYS[10] FailsKey  KEYS[11] FailingKey  KEYS[12] PausedKey
// ARGV[22] health: "ok", "fail" or "" (the attempt says nothing of the
// partner)  ARGV[23] auto-pause threshold (0 = off)  ARGV[24] "1": track
// failing and recovery  ARGV[25] the auto-pause's note (JSON)
// Returns {attempts recorded since the last replay, failures in a row,
// the pause's start (Unix ms) if this attempt paused the partner or 0,
// the failing start (Unix ms) if it made the partner failing (half way to
// its auto-pause) or 0, the failing start it ended by succeeding or 0}.
var recordScript = redis.NewScript(leaveLua + healthLua + `
local n
if ARGV[7] ~= "" then
  redis.call("HSETNX", KEYS[1], "first", ARGV[8])
  n = redis.call("HINCRBY", KEYS[1], "attempts", 1)
  redis.call("HSET", KEYS[1], "last", ARGV[8], "code", ARGV[9], "error", ARGV[10], "url", ARGV[11],
    "status", ARGV[1], "partner", ARGV[2], "event", ARGV[3], "updated", ARGV[4])
  redis.call("RPUSH", KEYS[2], ARGV[7])
  redis.call("HINCRBY", KEYS[3], "attempts", 1)
  if ARGV[14] == "1" then
    redis.call("HINCRBY", KEYS[3], "ok", 1)
  end
  if ARGV[12] ~= "" then
    -- Trimmed in steps of 64, not at every push; readers take the first
    -- ARGV[13].
    local kept = tonumber(ARGV[13])
    if redis.call("LPUSH", KEYS[4], ARGV[12]) > kept + 63 then
      redis.call("LTRIM", KEYS[4], 0, kept - 1)
    end
    redis.call("PEXPIRE", KEYS[4], ARGV[6])
  end
else
  n = tonumber(redis.call("HGET", KEYS[1], "attempts") or "0") or 0
  if ARGV[10] ~= "" then
    redis.call("HSET", KEYS[1], "error", ARGV[10])
  end
  redis.call("HSET", KEYS[1], "status", ARGV[1], "partner", ARGV[2], "event", ARGV[3], "updated", ARGV[4])
end
if ARGV[1] == "delivered" then
  redis.call("HINCRBY", KEYS[3], ARGV[19], 1)
  if ARGV[19] == "duplicate" then
    redis.call("HSET", KEYS[1], "outcome", "duplicate")
  end
end
if ARGV[15] ~= "" then
  redis.call("HSET", KEYS[1], "reason", ARGV[15], "dead_at", ARGV[4], "payload", ARGV[16])
  redis.call("PERSIST", KEYS[1])
  redis.call("PERSIST", KEYS[2])
  redis.call("ZADD", KEYS[5], ARGV[4], ARGV[17])
  redis.call("SADD", KEYS[6], ARGV[2])
  redis.call("HINCRBY", KEYS[3], "dead", 1)
else
  redis.call("PEXPIRE", KEYS[1], ARGV[5])
  redis.call("PEXPIRE", KEYS[2], ARGV[5])
end
redis.call("PEXPIRE", KEYS[3], ARGV[6])
if ARGV[18] ~= "" and redis.call("GET", KEYS[7]) == ARGV[18] then
  redis.call("DEL", KEYS[7])
end
if ARGV[20] ~= "" and ARGV[1] == "delivered" and redis.call("GET", KEYS[8]) == ARGV[17] then
  redis.call("SET", KEYS[8], "d:" .. ARGV[17], "PX", ARGV[20])
end
if ARGV[21] == "1" and (ARGV[1] == "delivered" or ARGV[1] == "dead") then
  leave(KEYS[9], ARGV[17])
end
local fails, paused, half, recovered = health(KEYS[10], KEYS[11], KEYS[12], ARGV[2], ARGV[4], ARGV[22], ARGV[23], ARGV[24], ARGV[25])
return {n, fails, paused, half, recovered}
`)

// healthLua counts an attempt towards its partner's failures in a row
// and failing state, and pauses it at its threshold (see Health). The
// keys are FailsKey, FailingKey and PausedKey: shard 0's, so with more
// shards a delivery of another shard counts in a script of its own
// (healthScript), after its outcome write.
const healthLua = `
local function health(fk, gk, pk, partner, now, kind, th, track, note)
  local fails, paused, half, recovered = 0, 0, 0, 0
  th = tonumber(th) or 0
  if kind == "fail" and th > 0 then
    fails = redis.call("HINCRBY", fk, partner, 1)
    if th > 1 and fails == math.floor((th + 1) / 2) and redis.call("HSETNX", gk, partner, now) == 1 then
      half = tonumber(now)
    end
    if fails >= th then
      redis.call("HDEL", fk, partner)
      if redis.call("HSETNX", pk, partner, now .. ":" .. note) == 1 then
        paused = tonumber(now)
      end
    end
  elseif kind == "ok" then
    if th > 0 then
      redis.call("HDEL", fk, partner)
    end
    if track == "1" then
      local since = redis.call("HGET", gk, partner)
      if since then
        redis.call("HDEL", gk, partner)
        recovered = tonumber(since) or 1
      end
    end
  end
  return fails, paused, half, recovered
end
`

// healthScript is healthLua alone, for a delivery outside shard 0.
//
// KEYS[1] FailsKey  KEYS[2] FailingKey  KEYS[3] PausedKey
// ARGV[1] partner  ARGV[2] now (ms)  ARGV[3] health  ARGV[4] threshold
// ARGV[5] track  ARGV[6] note
// Returns {0, fails, paused, half, recovered}, as recordScript does.
var healthScript = redis.NewScript(healthLua + `
local fails, paused, half, recovered = health(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return {0, fails, paused, half, recovered}
`)

// write is one call of recordScript.
type write struct {
	m         Meta
	status    retry.Status
	now       time.Time
	retention time.Duration
	attempt   *Attempt
	reason    string // dead-letter reason; "" = not dead
	errText   string // without an attempt: the record's last error
	payload   []byte
}

func (s *Store) record(ctx context.Context, w write) (int, error) {
	var (
		aJSON, sample string
		at            int64
		code          int
		errText, url  string
		ok            = "0"
		counter       = "delivered"
	)
	errText = w.errText
	if a := w.attempt; a != nil {
		b, err := json.Marshal(a)
		if err != nil {
			return 0, err
		}
		aJSON, at, code, errText, url = string(b), a.At.UnixMilli(), a.Status, a.Error, a.URL
		if a.Status != 0 || a.Duration > 0 { // something was sent
			sample = strconv.FormatInt(at, 10) + ":" + strconv.FormatInt(a.Duration.Microseconds(), 10)
		}
		switch a.Outcome {
		case retry.Delivered.String():
			ok = "1"
		case retry.Duplicate.String():
			ok, counter = "1", retry.Duplicate.String()
		}
	}
	keys := []string{
		s.DeliveryKey(w.m.ID), s.AttemptsKey(w.m.ID),
		s.StatsKey(w.m.Partner, w.now.Unix()/60), s.LatencyKey(w.m.Partner),
		s.DLQKey(w.m.Partner), s.DLQPartnersKey(), s.LeaseKey(w.m.ID),
		s.DeliveryKey(w.m.ID), s.DeliveryKey(w.m.ID), // unless the delivery has a dedup entry and a sequence
		FailsKey, FailingKey, PausedKey,
	}
	health, threshold, track, note := w.health()
	var global *Store
	if s.shard != 0 {
		// The health keys are shard 0's: counted after the outcome, below.
		keys[9], keys[10], keys[11] = keys[0], keys[0], keys[0]
		if health != "" {
			global = s.Global()
		}
	}
	var dedupTTL, inSeq string
	if w.m.Dedup != "" {
		keys[7], dedupTTL = w.m.Dedup, strconv.FormatInt(w.m.DedupTTL.Milliseconds(), 10)
	}
	if w.m.Order != "" {
		keys[8], inSeq = w.m.Order, "1"
	}
	inScript := health
	if global != nil {
		inScript = ""
	}
	v, err := recordScript.Run(ctx, s.rdb, keys,
		string(w.status), w.m.Partner, w.m.EventID, w.now.UnixMilli(),
		w.retention.Milliseconds(), statsTTL.Milliseconds(),
		aJSON, at, code, errText, url, sample, LatencySamples, ok,
		w.reason, w.payload, w.m.ID, w.m.Lease, counter, dedupTTL, inSeq,
		inScript, threshold, track, note).Int64Slice()
	if err != nil {
		return 0, err
	}
	if global != nil && len(v) >= 5 {
		hv, herr := healthScript.Run(ctx, global.rdb, []string{FailsKey, FailingKey, PausedKey},
			w.m.Partner, w.now.UnixMilli(), health, threshold, track, note).Int64Slice()
		if herr != nil || len(hv) < 5 {
			// The outcome is written; only the partner's health count
			// missed this attempt.
			w.m.Health.Err = fmt.Errorf("count partner health: %v (answer %v)", herr, hv)
		} else {
			copy(v[1:], hv[1:])
		}
	}
	if len(v) < 5 {
		return 0, fmt.Errorf("record: unexpected answer %v", v)
	}
	if h := w.m.Health; h != nil {
		h.Fails = int(v[1])
		h.Paused, h.Failing, h.Recovered = unixMilli(v[2]), unixMilli(v[3]), unixMilli(v[4])
	}
	return int(v[0]), nil
}

// AddAttempt appends attempt a to the history of delivery m and moves its
// record to status (delivered or retrying). It returns the number of
// attempts made so far (since the last replay).
func (s *Store) AddAttempt(ctx context.Context, m Meta, a Attempt, status retry.Status, retention time.Duration) (int, error) {
	n, err := s.record(ctx, write{m: m, status: status, now: a.At.Add(a.Duration), retention: retention, attempt: &a})
	if err != nil {
		return 0, fmt.Errorf("record attempt: %w", err)
	}
	return n, nil
}

// DeadLetterAttempt appends attempt a to the history of delivery m and
// moves it to its partner's dead-letter queue with reason, keeping payload
// (the full delivery task) for a replay: one atomic change, so a delivery
// is never recorded dead without being in the DLQ.
func (s *Store) DeadLetterAttempt(ctx context.Context, m Meta, a Attempt, reason string, payload []byte, now time.Time) (int, error) {
	n, err := s.record(ctx, write{m: m, status: retry.StatusDead, now: now, attempt: &a, reason: reason, payload: payload})
	if err != nil {
		return 0, fmt.Errorf("dead-letter %s: %w", m.ID, err)
	}
	return n, nil
}

// DeadLetter moves delivery m to its partner's dead-letter queue with
// reason, keeping payload (the full delivery task) for a replay, without
// recording an attempt (max_age reached while deferred); detail becomes
// the record's last error, so the DLQ says why. The record and history
// lose their expiry: a dead letter stays until retried or purged.
func (s *Store) DeadLetter(ctx context.Context, m Meta, reason, detail string, payload []byte, now time.Time) error {
	if _, err := s.record(ctx, write{m: m, status: retry.StatusDead, now: now, reason: reason, errText: detail, payload: payload}); err != nil {
		return fmt.Errorf("dead-letter %s: %w", m.ID, err)
	}
	return nil
}
