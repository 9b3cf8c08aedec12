package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErasureKey is an erasure's record (hash: see Erasure). It names the
// user only by an HMAC of the identifier, keyed with a random key of its
// own, and expires after attempt_log_retention.
func ErasureKey(id string) string { return Prefix + "er:" + id }

// ErasureTodoKey holds, while an erasure runs, what it found to erase
// (set of "d:<delivery id>" and "t:<queue>:<task id>"), so that a resumed
// erasure keeps it. It is deleted when the erasure is done.
func ErasureTodoKey(id string) string { return Prefix + "er-todo:" + id }

// ErasureLeaseKey is held by the process running an erasure.
func ErasureLeaseKey(id string) string { return Prefix + "er-lease:" + id }

// ErasuresKey indexes the erasures (sorted set of ids, scored by when they
// started in Unix milliseconds).
const ErasuresKey = Prefix + "erasures"

// Erasure is the record of one erasure: what kind of identifier it named
// (never the identifier), when, and how much it erased.
type Erasure struct {
	ID     string `json:"erasure_id"`
	Status string `json:"status"` // running or done
	Kind   string `json:"identifier"`
	// HMAC is HMAC-SHA256 of the identifier, normalised, keyed with Key:
	// whoever holds the identifier can check that this erasure was about
	// it; the record alone does not give it away.
	HMAC string `json:"identifier_hmac"`
	Key  string `json:"hmac_key"`
	// Phase is what a running erasure does now: scan, records, erase.
	Phase       string    `json:"phase,omitempty"`
	Scanned     int64     `json:"keys_scanned"`
	Deliveries  int64     `json:"deliveries"`
	DeadLetters int64     `json:"dead_letters"`
	Tasks       int64     `json:"tasks"`
	Attempts    int64     `json:"attempts"`
	Started     time.Time `json:"started_at"`
	Finished    time.Time `json:"finished_at,omitzero"`
	By          string    `json:"by"` // cli or api
}

// SaveErasure writes e's record (and, the first time, its index entry).
// Nothing of it outlives retention: a done erasure's record expires
// after it and its work list goes; the index forgets erasures started
// longer ago and expires with its newest entry; a running erasure's work
// list expires after it too.
func (s *Store) SaveErasure(ctx context.Context, e *Erasure, retention time.Duration) error {
	finished := int64(0)
	if !e.Finished.IsZero() {
		finished = e.Finished.UnixMilli()
	}
	now := max(e.Started.UnixMilli(), finished)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, ErasureKey(e.ID),
			"status", e.Status, "kind", e.Kind, "hmac", e.HMAC, "key", e.Key, "phase", e.Phase,
			"scanned", e.Scanned, "deliveries", e.Deliveries, "dead_letters", e.DeadLetters,
			"tasks", e.Tasks, "attempts", e.Attempts, "started", e.Started.UnixMilli(),
			"finished", finished, "by", e.By)
		p.PExpire(ctx, ErasureKey(e.ID), retention)
		p.ZAddNX(ctx, ErasuresKey, redis.Z{Score: float64(e.Started.UnixMilli()), Member: e.ID})
		p.ZRemRangeByScore(ctx, ErasuresKey, "-inf", "("+strconv.FormatInt(now-retention.Milliseconds(), 10))
		p.PExpire(ctx, ErasuresKey, retention)
		if e.Status == "done" {
			p.Del(ctx, ErasureTodoKey(e.ID))
		} else {
			p.PExpire(ctx, ErasureTodoKey(e.ID), retention)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save erasure %s: %w", e.ID, err)
	}
	return nil
}

// GetErasure returns erasure id's record, or ErrNotFound.
func (s *Store) GetErasure(ctx context.Context, id string) (*Erasure, error) {
	m, err := s.rdb.HGetAll(ctx, ErasureKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("get erasure: %w", err)
	}
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	return &Erasure{
		ID: id, Status: m["status"], Kind: m["kind"], HMAC: m["hmac"], Key: m["key"], Phase: m["phase"],
		Scanned: n("scanned"), Deliveries: n("deliveries"), DeadLetters: n("dead_letters"),
		Tasks: n("tasks"), Attempts: n("attempts"), Started: msTime(m["started"]),
		Finished: msTime(m["finished"]), By: m["by"],
	}, nil
}

// RunningErasures returns the records of the erasures not done, whose
// index entries have not expired with their records.
func (s *Store) RunningErasures(ctx context.Context) ([]*Erasure, error) {
	ids, err := s.rdb.ZRange(ctx, ErasuresKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list erasures: %w", err)
	}
	var out []*Erasure
	for _, id := range ids {
		e, err := s.GetErasure(ctx, id)
		if errors.Is(err, ErrNotFound) {
			// Expired with the attempt log: the index forgets it too.
			if err := s.rdb.ZRem(ctx, ErasuresKey, id).Err(); err != nil {
				return nil, fmt.Errorf("list erasures: %w", err)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if e.Status != "done" {
			out = append(out, e)
		}
	}
	return out, nil
}

// TakeErasure takes or renews erasure id's lease for token, for ttl; it
// reports false when another process holds it.
func (s *Store) TakeErasure(ctx context.Context, id, token string, ttl time.Duration) (bool, error) {
	ok, err := takeLeaseScript.Run(ctx, s.rdb, []string{ErasureLeaseKey(id)}, token, ttl.Milliseconds()).Bool()
	if err != nil && !isNil(err) {
		return false, fmt.Errorf("take erasure %s: %w", id, err)
	}
	return ok, nil
}

// takeLeaseScript sets KEYS[1] to ARGV[1] for ARGV[2] ms unless another
// token holds it. Returns 1 when ARGV[1] holds it now.
var takeLeaseScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v and v ~= ARGV[1] then
  return 0
end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return 1
`)

// ReleaseErasure frees erasure id's lease if token holds it.
func (s *Store) ReleaseErasure(ctx context.Context, id, token string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{ErasureLeaseKey(id)}, token).Err(); err != nil && !isNil(err) {
		return fmt.Errorf("release erasure %s: %w", id, err)
	}
	return nil
}

// AddErasureTodo adds items to erasure id's work list.
func (s *Store) AddErasureTodo(ctx context.Context, id string, items []string) error {
	if len(items) == 0 {
		return nil
	}
	if err := s.rdb.SAdd(ctx, ErasureTodoKey(id), toAny(items)...).Err(); err != nil {
		return fmt.Errorf("erasure %s: %w", id, err)
	}
	return nil
}

// ErasureTodo returns erasure id's work list.
func (s *Store) ErasureTodo(ctx context.Context, id string) ([]string, error) {
	v, err := s.rdb.SMembers(ctx, ErasureTodoKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("erasure %s: %w", id, err)
	}
	return v, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Nodes calls fn with a store on each server that holds keys: every
// master of a Redis Cluster (a SCAN sees one node's keys only), or s
// itself. The stores are for ScanHashes; other reads go through s.
func (s *Store) Nodes(ctx context.Context, fn func(node *Store) error) error {
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return fn(s)
	}
	var masters []*redis.Client
	var mu sync.Mutex
	err := cc.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		masters = append(masters, c)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster masters: %w", err)
	}
	slices.SortFunc(masters, func(a, b *redis.Client) int { return strings.Compare(a.Options().Addr, b.Options().Addr) })
	for _, c := range masters {
		if err := fn(&Store{rdb: c, p: s.p, shard: s.shard, set: s.set}); err != nil {
			return err
		}
	}
	return nil
}

// ScanHashes returns one page of the database's hash keys from cursor,
// about count of them, and the cursor of the next page (0 at the end).
// Tasks, delivery records and dead letters are all hashes.
func (s *Store) ScanHashes(ctx context.Context, cursor uint64, count int64) ([]string, uint64, error) {
	keys, next, err := s.rdb.ScanType(ctx, cursor, "", count, "hash").Result()
	if err != nil {
		return nil, 0, fmt.Errorf("scan: %w", err)
	}
	return keys, next, nil
}

// RecordID returns the delivery id of a delivery record's key, and its
// shard.
func RecordID(key string) (id string, shard int, ok bool) {
	shard, rest, ok := KeyShard(key)
	if !ok {
		return "", 0, false
	}
	id, ok = strings.CutPrefix(rest, "d:")
	return id, shard, ok && strings.HasPrefix(id, "dlv_")
}

// TaskOf returns the queue and task id of an asynq task hash key of one
// of queues.
func TaskOf(key string, queues []string) (queue, id string, ok bool) {
	for _, q := range queues {
		if id, ok := strings.CutPrefix(key, AsynqTaskPrefix(q)); ok {
			return q, id, true
		}
	}
	return "", "", false
}

// AsynqTaskKey is the hash of asynq task id in queue.
func AsynqTaskKey(queue, id string) string { return AsynqTaskPrefix(queue) + id }

// StoredTask is an asynq task as stored: its message and state.
type StoredTask struct {
	Queue, ID string
	Msg       []byte // nil: the task is gone
	State     string // pending, active, scheduled, retry, archived, completed…
}

// ReadTasks reads tasks (queue and id set) in one pipeline.
func (s *Store) ReadTasks(ctx context.Context, tasks []StoredTask) error {
	cmds := make([]*redis.SliceCmd, len(tasks))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range tasks {
			cmds[i] = p.HMGet(ctx, AsynqTaskKey(t.Queue, t.ID), "msg", "state")
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return fmt.Errorf("read tasks: %w", err)
	}
	for i, c := range cmds {
		v := c.Val()
		tasks[i].Msg, tasks[i].State = nil, ""
		if len(v) == 2 {
			if m, ok := v[0].(string); ok {
				tasks[i].Msg = []byte(m)
			}
			tasks[i].State, _ = v[1].(string)
		}
	}
	return nil
}

// StoredRecord is a delivery record as an erasure reads it: the fields
// that may hold personal data, and the attempts.
type StoredRecord struct {
	ID string
	// Shard is the shard the record was read in (see Store.Locate).
	Shard    int
	Exists   bool
	Status   string
	URL      string
	Error    string
	Payload  []byte   // dead letters only
	Attempts []string // JSON, oldest first
}

// ReadRecords reads the records and attempt histories of ids, in one
// pipeline; withAttempts false skips the histories.
//
// Each record is read in the shard that holds it (Locate): one more
// round trip with more than one shard.
func (s *Store) ReadRecords(ctx context.Context, ids []string, withAttempts bool) ([]StoredRecord, error) {
	at, err := s.Locate(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	for i := range at {
		if at[i] == nil {
			at[i] = s // none has it: read as missing where s is
		}
	}
	hs := make([]*redis.SliceCmd, len(ids))
	as := make([]*redis.StringSliceCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			hs[i] = p.HMGet(ctx, at[i].DeliveryKey(id), "status", "url", "error", "payload")
			if withAttempts {
				as[i] = p.LRange(ctx, at[i].AttemptsKey(id), 0, -1)
			}
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return nil, fmt.Errorf("read records: %w", err)
	}
	out := make([]StoredRecord, len(ids))
	for i, id := range ids {
		r := StoredRecord{ID: id, Shard: at[i].shard}
		v := hs[i].Val()
		if len(v) == 4 {
			str := func(j int) string { s, _ := v[j].(string); return s }
			r.Status, r.URL, r.Error = str(0), str(1), str(2)
			r.Exists = v[0] != nil
			if p := str(3); p != "" {
				r.Payload = []byte(p)
			}
		}
		if withAttempts {
			r.Attempts = as[i].Val()
		}
		out[i] = r
	}
	return out, nil
}

// The answers of the erasure scripts.
const (
	EraseDone    = "ok"      // rewritten
	EraseActive  = "active"  // a worker holds it: try again once it lets go
	EraseChanged = "changed" // it changed since it was read: read it again
	EraseGone    = "gone"    // nothing to erase any more
)

// eraseTaskScript replaces an asynq task's message, unless a worker has
// taken it (asynq then writes its own copy back when it retries) or it
// changed since it was read. asynq's dequeue is a script too, so a worker
// takes either the old message or the new one.
//
// KEYS[1] task hash  ARGV[1] message read  ARGV[2] new message
var eraseTaskScript = redis.NewScript(`
local v = redis.call("HMGET", KEYS[1], "msg", "state")
if not v[1] then
  return "gone"
end
if v[2] == "active" then
  return "active"
end
if v[1] ~= ARGV[1] then
  return "changed"
end
redis.call("HSET", KEYS[1], "msg", ARGV[2])
return "ok"
`)

// EraseTask replaces the message of task t, read as t.Msg, with msg.
func (s *Store) EraseTask(ctx context.Context, t StoredTask, msg []byte) (string, error) {
	v, err := eraseTaskScript.Run(ctx, s.rdb, []string{AsynqTaskKey(t.Queue, t.ID)}, t.Msg, msg).Text()
	if err != nil {
		return "", fmt.Errorf("erase task %s: %w", t.ID, err)
	}
	return v, nil
}

// eraseRecordScript rewrites the personal fields of a delivery's record
// and attempts, unless an attempt of it is under way (its outcome will
// write more) or they changed since they were read. HSET and LSET keep
// the keys' expiry: the attempt log's retention is unchanged.
//
// KEYS[1] delivery key  KEYS[2] attempts key  KEYS[3] lease key
// ARGV[1..3] url, error, payload as read   ARGV[4..6] their new values
// ARGV[7] attempts read (count), then per attempt: as read, new
var eraseRecordScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[3]) == 1 then
  return "active"
end
local cur = redis.call("HMGET", KEYS[1], "url", "error", "payload")
for i = 1, 3 do
  if (cur[i] or "") ~= ARGV[i] then
    return "changed"
  end
end
local n = tonumber(ARGV[7])
if redis.call("LLEN", KEYS[2]) ~= n then
  return "changed"
end
for i = 0, n - 1 do
  if redis.call("LINDEX", KEYS[2], i) ~= ARGV[8 + 2 * i] then
    return "changed"
  end
end
local names = {"url", "error", "payload"}
for i = 1, 3 do
  if ARGV[i] ~= ARGV[i + 3] then
    redis.call("HSET", KEYS[1], names[i], ARGV[i + 3])
  end
end
for i = 0, n - 1 do
  if ARGV[8 + 2 * i] ~= ARGV[9 + 2 * i] then
    redis.call("LSET", KEYS[2], i, ARGV[9 + 2 * i])
  end
end
return "ok"
`)

// EraseRecord replaces the personal fields of record r, as read, with
// those of w (URL, Error, Payload, Attempts, one for one).
func (s *Store) EraseRecord(ctx context.Context, r, w StoredRecord) (string, error) {
	if len(w.Attempts) != len(r.Attempts) {
		return "", fmt.Errorf("erase record %s: %d attempts for %d", r.ID, len(w.Attempts), len(r.Attempts))
	}
	args := []any{r.URL, r.Error, r.Payload, w.URL, w.Error, w.Payload, len(r.Attempts)}
	for i := range r.Attempts {
		args = append(args, r.Attempts[i], w.Attempts[i])
	}
	sh := s.Shard(r.Shard)
	v, err := eraseRecordScript.Run(ctx, s.rdb, []string{sh.DeliveryKey(r.ID), sh.AttemptsKey(r.ID), sh.LeaseKey(r.ID)}, args...).Text()
	if err != nil {
		return "", fmt.Errorf("erase record %s: %w", r.ID, err)
	}
	return v, nil
}

// asynqWorkersKey is asynq's index of its servers' worker hashes (sorted
// set of keys), each a hash of the tasks it runs now: task id → worker
// info, which holds the task's payload until the next heartbeat after it
// ends.
const asynqWorkersKey = "asynq:workers"

// TasksInWorkers returns which of task ids an asynq server still lists as
// running (with their payloads) in its worker hash.
func (s *Store) TasksInWorkers(ctx context.Context, ids []string) (map[string]bool, error) {
	keys, err := s.rdb.ZRange(ctx, asynqWorkersKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read asynq workers: %w", err)
	}
	out := map[string]bool{}
	if len(keys) == 0 || len(ids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.SliceCmd, len(keys))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HMGet(ctx, k, ids...)
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return nil, fmt.Errorf("read asynq workers: %w", err)
	}
	for _, c := range cmds {
		for j, v := range c.Val() {
			if v != nil {
				out[ids[j]] = true
			}
		}
	}
	return out, nil
}
