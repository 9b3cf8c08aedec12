package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// ErrNotFound is returned for a delivery that has no record.
var ErrNotFound = errors.New("not found")

// Store reads and writes postback's keys in one shard (see KeyPrefix);
// Shard gives the store of another. The keys that are not about
// deliveries (pauses, health, erasures) are shard 0's whichever store
// writes them.
type Store struct {
	rdb   redis.UniversalClient
	p     string // the shard's key prefix
	shard int
	set   *layout
}

// layout is a deployment's shards: those new events are placed into,
// and every one read.
type layout struct {
	all    []*Store // every shard read, shard 0's first
	placed int      // the first placed of them
}

// New returns the Store of a deployment with one shard, on rdb.
func New(rdb redis.UniversalClient) *Store { return NewSharded(rdb, 1) }

// NewSharded returns shard 0's Store of a deployment of n shards
// (redis.shards, at least 1) on rdb; Shard and All give the others.
func NewSharded(rdb redis.UniversalClient, n int) *Store { return NewLayout(rdb, n, n) }

// NewLayout is NewSharded for a deployment that places events into
// placed shards and reads served of them (at least placed: shards of an
// earlier layout still being drained).
func NewLayout(rdb redis.UniversalClient, placed, served int) *Store {
	placed = max(placed, 1)
	set := &layout{all: make([]*Store, max(served, placed)), placed: placed}
	for k := range set.all {
		set.all[k] = &Store{rdb: rdb, p: KeyPrefix(k), shard: k, set: set}
	}
	return set.all[0]
}

// Shard returns shard k's store. A shard beyond the deployment's (a
// queue left from a larger redis.shards, say) gets a store of its own.
func (s *Store) Shard(k int) *Store {
	if all := s.set.all; k >= 0 && k < len(all) {
		return all[k]
	}
	return &Store{rdb: s.rdb, p: KeyPrefix(k), shard: k, set: s.set}
}

// ForQueue returns the store of queue q's shard (see wire.QueueShard),
// shard 0's for a queue that is no delivery queue.
func (s *Store) ForQueue(q string) *Store {
	if len(s.set.all) == 1 && (q == wire.QueueDefault || q == wire.QueueReplay) {
		return s.set.all[0]
	}
	k, _, _ := wire.QueueShard(q)
	return s.Shard(k)
}

// All returns every shard's store, shard 0's first.
func (s *Store) All() []*Store { return s.set.all }

// Shards is the deployment's number of shards read.
func (s *Store) Shards() int { return len(s.set.all) }

// Placed is how many shards new events are placed into.
func (s *Store) Placed() int { return s.set.placed }

// Index is the store's shard.
func (s *Store) Index() int { return s.shard }

// Global returns shard 0's store, where the keys that are not about
// deliveries live.
func (s *Store) Global() *Store { return s.Shard(0) }

// Redis returns the client the store uses.
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// Claim is the answer to ClaimEvent.
type Claim struct {
	// New is true when this call recorded the event first.
	New bool
	// Deliveries is what the first call stored (JSON), when New is false.
	Deliveries []byte
}

// NewClaimCmd is ClaimEvent's command, not yet sent: for callers that send
// it in a pipeline of their own. ClaimResult reads its answer.
//
// SET key deliveries NX PX window GET stores the claim when there is none
// and answers the existing one, if any, in one step.
func NewClaimCmd(ctx context.Context, id string, deliveries []byte, window time.Duration) *redis.StringCmd {
	return newClaimCmd(ctx, EventKey(id), deliveries, window)
}

// NewClaimCmd is NewClaimCmd in the shard of event id (EventShard).
func (s *Store) NewClaimCmd(ctx context.Context, id string, deliveries []byte, window time.Duration) *redis.StringCmd {
	return newClaimCmd(ctx, s.ClaimKey(id), deliveries, window)
}

// EventShard is the store of the shard event id's claim lives in: the
// event id's place among the shards placed into (wire.ShardOf), shard 0
// with one shard.
func (s *Store) EventShard(id string) *Store {
	if s.set.placed == 1 {
		return s.set.all[0]
	}
	return s.set.all[wire.ShardOf(id, s.set.placed)]
}

func newClaimCmd(ctx context.Context, key string, deliveries []byte, window time.Duration) *redis.StringCmd {
	return redis.NewStringCmd(ctx, "set", key, deliveries, "px", window.Milliseconds(), "nx", "get")
}

// ClaimEvent records event id as seen for window with its deliveries, unless
// it was seen within the window already; then it returns what the first
// call recorded. It is one SET NX GET (Redis 7.0 or later): no script, and
// a claim is the whole event key, a string that expires with the window.
func (s *Store) ClaimEvent(ctx context.Context, id string, deliveries []byte, window time.Duration) (Claim, error) {
	return ClaimResult(s.claimCmd(ctx, s.rdb, id, deliveries, window))
}

// EventClaim is one event for ClaimEvents.
type EventClaim struct {
	ID         string
	Deliveries []byte // the encoded claim (dispatcher's encodeClaim)
}

// ClaimEvents claims each event as ClaimEvent would, in one pipeline: one
// round trip for the lot. claims[i] and errs[i] are about evs[i]; when the
// connection fails, every one of them has the error.
func (s *Store) ClaimEvents(ctx context.Context, evs []EventClaim, window time.Duration) (claims []Claim, errs []error) {
	cmds := make([]*redis.StringCmd, len(evs))
	// Each command keeps its own answer or error, which is what is read
	// below; the pipeline's error is only the first of them.
	_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, ev := range evs {
			cmds[i] = s.claimCmd(ctx, pipe, ev.ID, ev.Deliveries, window)
		}
		return nil
	})
	claims, errs = make([]Claim, len(evs)), make([]error, len(evs))
	for i, cmd := range cmds {
		claims[i], errs[i] = ClaimResult(cmd)
	}
	return claims, errs
}

// claimCmd issues NewClaimCmd on c.
func (s *Store) claimCmd(ctx context.Context, c processor, id string, deliveries []byte, window time.Duration) *redis.StringCmd {
	cmd := s.NewClaimCmd(ctx, id, deliveries, window)
	_ = c.Process(ctx, cmd)
	return cmd
}

// processor is what a client and a pipeline have in common.
type processor interface {
	Process(ctx context.Context, cmd redis.Cmder) error
}

// ClaimResult reads the answer to a NewClaimCmd command.
func ClaimResult(cmd *redis.StringCmd) (Claim, error) {
	prior, err := cmd.Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return Claim{New: true}, nil
	case err != nil:
		return Claim{}, fmt.Errorf("claim event: %w", err)
	}
	return Claim{Deliveries: prior}, nil
}

// RecordedAt reports, for each delivery ids[i], whether it has a record
// in shard shards[i]: whether a worker has taken it up at least once, it
// was skipped, or it was dead-lettered, replayed or purged. A delivery
// without a record was never attempted; one with a record has, or had,
// its task. One pipeline.
func (s *Store) RecordedAt(ctx context.Context, shards []int, ids []string) ([]bool, error) {
	cmds := make([]*redis.IntCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = pipe.Exists(ctx, s.Shard(shards[i]).DeliveryKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read delivery records: %w", err)
	}
	out := make([]bool, len(ids))
	for i, cmd := range cmds {
		out[i] = cmd.Val() > 0
	}
	return out, nil
}

// Record is a delivery's current state.
type Record struct {
	ID        string       `json:"id"`
	Partner   string       `json:"partner"`
	EventID   string       `json:"event_id"`
	Status    retry.Status `json:"status"`
	Reason    string       `json:"reason,omitempty"` // why it is dead or skipped
	Attempts  int          `json:"attempts"`
	First     time.Time    `json:"first_attempt_at,omitzero"`
	Last      time.Time    `json:"last_attempt_at,omitzero"`
	LastCode  int          `json:"last_status,omitempty"`
	LastError string       `json:"last_error,omitempty"`
	URL       string       `json:"url,omitempty"` // the URL last sent
	Updated   time.Time    `json:"updated_at,omitzero"`
	// DeadAt is when it entered the DLQ (dead letters only).
	DeadAt time.Time `json:"dead_at,omitzero"`
	// Replays counts how often it was replayed from the DLQ; each replay
	// starts the attempt count again.
	Replays int `json:"replays,omitempty"`
	// Outcome is "duplicate" for a delivered record whose partner
	// answered that it had the conversion already; "" otherwise.
	Outcome string `json:"outcome,omitempty"`
}

// Attempt is one try at sending a delivery.
type Attempt struct {
	N        int           `json:"n"`
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration_ns"`
	Status   int           `json:"status,omitempty"`
	Outcome  string        `json:"outcome"`
	Error    string        `json:"error,omitempty"`
	URL      string        `json:"url,omitempty"`
	Response string        `json:"response,omitempty"` // first 2 KiB
	// Replay is the record's replay count when the attempt was made (0
	// before any replay), so a history that spans replays reads clearly.
	Replay int `json:"replay,omitempty"`
	// Rule is the partner's responses rule that decided the outcome;
	// "" when none did.
	Rule string `json:"rule,omitempty"`
}

// Get returns the record of delivery id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	m, err := s.rdb.HGetAll(ctx, s.DeliveryKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("get delivery: %w", err)
	}
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	return parseRecord(id, m), nil
}

// Lease asks GetForAttempt to hold a delivery for one attempt: Token
// names the holder, TTL bounds how long a holder that dies keeps it.
type Lease struct {
	Token string
	TTL   time.Duration
	// Until, when set, is when the lease ends; by default TTL from the
	// call. The end is fixed when the request is made, not when Redis
	// runs it: a request that waited in a frozen Redis's input buffer,
	// its caller long gone, must not take the lease for a whole TTL from
	// when Redis came back (its task's next run would wait all of it).
	Until time.Time
}

// GetForAttempt returns what a worker reads before an attempt, in one round
// trip: delivery id's record (nil when it has none yet) and the claim of
// its event (nil when there is none, or it expired with the dedup window).
//
// Unless the record is final, it also takes lease (when lease.Token is
// set): then busy is 0 and the caller holds the delivery until an outcome
// write for m.Lease (AddAttempt, DeadLetterAttempt, DeadLetter, SetStatus)
// or Release frees it. When another attempt of the delivery holds it, busy is how
// long that lease has left, and the caller must not attempt. Two tasks of
// one delivery (a bundle's and the delivery's own, say) thus never send at
// once. For a delivery in sequence seq (OrderKey; "" for none) it also
// reads the delivery's turn, as OrderTurn does, in the same round trip.
func (s *Store) GetForAttempt(ctx context.Context, id, eventID string, lease Lease, seq string) (rec *Record, claim []byte, busy time.Duration, turn Turn, err error) {
	// One command, so that it joins an auto-pipeline as one (the keys
	// share the shard's hash tag). An event's claim is in the shard of its
	// id, as its deliveries are, unless a lifecycle rule placed the
	// delivery by partner (see intake's placement): then the claim is one
	// GET in its own shard, at the same time.
	claimKey, readClaim := s.ClaimKey(eventID), "1"
	var other chan *redis.StringCmd
	if es := s.EventShard(eventID); es != s {
		claimKey, readClaim = s.DeliveryKey(id), "0"
		other = make(chan *redis.StringCmd, 1)
		go func() { other <- es.rdb.Get(ctx, es.ClaimKey(eventID)) }()
	}
	keys, inSeq := []string{s.DeliveryKey(id), claimKey, s.LeaseKey(id), s.DeliveryKey(id)}, ""
	if seq != "" {
		keys[3], inSeq = seq, "1"
	}
	until := lease.Until
	if until.IsZero() {
		until = time.Now().Add(lease.TTL)
	}
	v, err := readForAttemptScript.Run(ctx, s.rdb, keys,
		lease.Token, until.UnixMilli(), inSeq, id, s.p+"d:", readClaim).Slice()
	if other != nil {
		c := <-other
		if cerr := c.Err(); cerr != nil && !isNil(cerr) && err == nil {
			err = cerr
		}
		if err == nil && len(v) == 4 && c.Err() == nil {
			v[1] = c.Val()
		}
	}
	if err != nil {
		return nil, nil, 0, Turn{}, fmt.Errorf("get delivery: %w", err)
	}
	if len(v) != 4 {
		return nil, nil, 0, Turn{}, fmt.Errorf("get delivery: %d values from the script, want 4", len(v))
	}
	if fields, _ := v[0].([]any); len(fields) > 0 {
		m := make(map[string]string, len(fields)/2)
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			m[k], _ = fields[i+1].(string)
		}
		rec = parseRecord(id, m)
	}
	if c, ok := v[1].(string); ok {
		claim = []byte(c)
	}
	if ms, ok := v[2].(int64); ok && ms != 0 {
		busy = max(time.Duration(ms)*time.Millisecond, time.Millisecond)
	}
	if t, _ := v[3].([]any); len(t) == 3 {
		turn.Blocker, _ = t[0].(string)
		turn.BlockerTask, _ = t[1].(string)
		turn.BlockerStatus, _ = t[2].(string)
	}
	return rec, claim, busy, turn, nil
}

// readForAttemptScript reads a delivery's record and its event's claim,
// and takes the delivery's lease unless its record is final; for a
// delivery in a sequence, it also reads its turn (orderTurnScript's).
//
// KEYS[1] delivery key  KEYS[2] event key  KEYS[3] lease key
// KEYS[4] sequence (when ARGV[3] is "1")
// ARGV[1] lease token ("" = take none)  ARGV[2] when the lease ends (Unix
// ms: fixed by the caller, so that a request run late takes no more)
// ARGV[4] delivery id  ARGV[5] record key prefix
// ARGV[6] "1": KEYS[2] is the claim to read; else none is read here
// Returns {HGETALL of the record, the claim or false, 0 or the holder's
// lease's PTTL in ms (at least 1) when another holds it, the turn}.
var readForAttemptScript = redis.NewScript(turnLua + `
local rec = redis.call("HGETALL", KEYS[1])
local busy = 0
local st = ""
for i = 1, #rec, 2 do
  if rec[i] == "status" then st = rec[i + 1] end
end
-- Status.Final's statuses
local final = st == "delivered" or st == "dead" or st == "skipped" or st == "purged"
if ARGV[1] ~= "" and not final then
  if not redis.call("SET", KEYS[3], ARGV[1], "NX", "PXAT", ARGV[2]) then
    busy = math.max(redis.call("PTTL", KEYS[3]), 1)
  end
end
local t = {}
if ARGV[3] == "1" and not final then t = turn(KEYS[4], ARGV[4], ARGV[5]) end
local claim = false
if ARGV[6] == "1" then claim = redis.call("GET", KEYS[2]) end
return {rec, claim, busy, t}
`)

// Release frees delivery id's lease if token still holds it: for an
// attempt that ends without an outcome write (deferred, dropped).
func (s *Store) Release(ctx context.Context, id, token string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.LeaseKey(id)}, token).Err(); err != nil && !isNil(err) {
		return fmt.Errorf("release delivery %s: %w", id, err)
	}
	return nil
}

// releaseScript deletes KEYS[1] if it holds ARGV[1].
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`)

func parseRecord(id string, m map[string]string) *Record {
	r := &Record{
		ID: id, Partner: m["partner"], EventID: m["event"], Status: retry.Status(m["status"]),
		Reason: m["reason"], LastError: m["error"], URL: m["url"],
	}
	if r.Status != retry.StatusDead && r.Status != retry.StatusSkipped && r.Status != retry.StatusPurged {
		r.Reason = "" // a replayed delivery's old dead-letter reason no longer applies
	}
	r.Attempts, _ = strconv.Atoi(m["attempts"])
	r.LastCode, _ = strconv.Atoi(m["code"])
	r.First = msTime(m["first"])
	r.Last = msTime(m["last"])
	r.Updated = msTime(m["updated"])
	r.DeadAt = msTime(m["dead_at"])
	r.Replays, _ = strconv.Atoi(m["replays"])
	r.Outcome = m["outcome"]
	return r
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Attempts returns the attempt history of delivery id, oldest first.
func (s *Store) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	raw, err := s.rdb.LRange(ctx, s.AttemptsKey(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("get attempts: %w", err)
	}
	out := make([]Attempt, 0, len(raw))
	for _, r := range raw {
		var a Attempt
		if err := json.Unmarshal([]byte(r), &a); err != nil {
			return nil, fmt.Errorf("attempt of %s: %w", id, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Meta identifies the delivery a write is about.
type Meta struct {
	ID      string
	Partner string
	EventID string
	// Lease is the token of the attempt's lease (see GetForAttempt); an
	// outcome write frees it. "" = none.
	Lease string
	// Health, when set, has the outcome write count the attempt towards
	// the partner's run of failures (auto_pause) and its failing state,
	// and receives what that led to. Nil: not counted.
	Health *Health
	// Order is the sequence the delivery takes its turn in (OrderKey),
	// which a final outcome write takes it out of. "" = none.
	Order string
	// Dedup is the partner's dedup ledger entry the delivery holds
	// (DedupKey), which a delivered outcome write marks delivered for
	// DedupTTL. "" = none.
	Dedup    string
	DedupTTL time.Duration
}

// statusScript sets a delivery's status and reason, keeping its history.
//
// KEYS[1] delivery key  KEYS[2] lease key
// ARGV[1] status ARGV[2] reason ARGV[3] partner ARGV[4] event id
// ARGV[5] now (ms) ARGV[6] retention (ms)
// ARGV[7] lease token ("" = none): freed if it holds it
var statusScript = redis.NewScript(`
redis.call("HSET", KEYS[1], "status", ARGV[1], "reason", ARGV[2], "partner", ARGV[3],
  "event", ARGV[4], "updated", ARGV[5])
redis.call("PEXPIRE", KEYS[1], ARGV[6])
if ARGV[7] ~= "" and redis.call("GET", KEYS[2]) == ARGV[7] then
  redis.call("DEL", KEYS[2])
end
return nil
`)

// SetStatus moves delivery m to status with a reason (for skipped and
// delivered records that need no attempt entry), freeing m.Lease.
func (s *Store) SetStatus(ctx context.Context, m Meta, status retry.Status, reason string, now time.Time, retention time.Duration) error {
	err := statusScript.Run(ctx, s.rdb, []string{s.DeliveryKey(m.ID), s.LeaseKey(m.ID)},
		string(status), reason, m.Partner, m.EventID, now.UnixMilli(), retention.Milliseconds(), m.Lease).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("set status: %w", err)
	}
	return nil
}

func isNil(err error) bool { return errors.Is(err, redis.Nil) }

// WaitReplicas waits until n replicas have every write the master answered
// before the call, or timeout passes, and returns how many acknowledged.
// witnesses are key sets that must all be on the master the wait runs on;
// present[i] tells whether witnesses[i] were.
//
// Redis's WAIT counts the writes of the connection it runs on. Ours ran on
// other connections (pipelines and the pool's), so the call first makes a
// write of its own (INCR ReplSyncKey) on one connection and then WAITs
// there: the replication stream is one sequence, and that write's offset is
// past everything the master had already answered. Around a Sentinel
// failover, though, the writes and the wait can reach different masters
// (a pooled connection to the old one, a new one to the new); the
// witnesses, read in the same pipeline, tell. One round trip, on a single
// server or one managed by Sentinel; Redis Cluster is a set of streams, one
// per master, and is refused.
func (s *Store) WaitReplicas(ctx context.Context, n int, timeout time.Duration, witnesses [][]string) (acked int, present []bool, err error) {
	if _, ok := s.rdb.(*redis.ClusterClient); ok {
		return 0, nil, errors.New("api.wait_replicas is not supported on Redis Cluster (WAIT covers one master's writes)")
	}
	exists := make([]*redis.IntCmd, len(witnesses))
	var wait *redis.Cmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, keys := range witnesses {
			if len(keys) > 0 {
				exists[i] = p.Exists(ctx, keys...)
			}
		}
		p.Incr(ctx, ReplSyncKey)
		wait = p.Do(ctx, "wait", n, max(timeout.Milliseconds(), 1))
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("wait for %d replicas: %w", n, err)
	}
	if acked, err = wait.Int(); err != nil {
		return 0, nil, fmt.Errorf("wait for %d replicas: %w", n, err)
	}
	present = make([]bool, len(witnesses))
	for i, keys := range witnesses {
		present[i] = exists[i] == nil || exists[i].Val() == int64(len(keys))
	}
	return acked, present, nil
}
