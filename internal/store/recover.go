package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// asynq's keys of a queue, as asynq v0.26 names them (its internal/base).
// TestRequeueExpired runs against a real asynq and fails if they change.
func asynqKey(queue, name string) string { return "asynq:{" + queue + "}:" + name }

// AsynqTaskPrefix is the prefix of asynq's task hashes in queue.
func AsynqTaskPrefix(queue string) string { return asynqKey(queue, "t:") }

// requeueExpiredScript puts back into the pending list the active tasks
// of a queue whose asynq lease ran out more than a grace period ago, the
// move asynq's own Requeue makes. asynq's recoverer does the same, but
// only for leases expired 30 s ago and once a minute, and every asynq
// server of a worker races for each task; a task whose completion write
// was lost while Redis froze sits in the active list until then.
//
// The lease zset's scores are expiry times in Unix seconds. The cutoff is
// taken from Redis's own clock, so worker clocks do not matter. A
// processor never writes a task whose lease it has seen run out, so a
// task past its lease and the grace belongs to nobody.
//
// KEYS[1] active list  KEYS[2] lease zset  KEYS[3] pending list
// ARGV[1] grace (s)    ARGV[2] task hash prefix  ARGV[3] most tasks to move
// Returns how many tasks it moved.
var requeueExpiredScript = redis.NewScript(`
local now = redis.call("TIME")
local cutoff = tonumber(now[1]) - tonumber(ARGV[1])
local ids = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", cutoff, "LIMIT", 0, tonumber(ARGV[3]))
local moved = 0
for _, id in ipairs(ids) do
  redis.call("ZREM", KEYS[2], id)
  local key = ARGV[2] .. id
  if redis.call("LREM", KEYS[1], 0, id) > 0 and redis.call("EXISTS", key) == 1 then
    redis.call("RPUSH", KEYS[3], id)
    redis.call("HSET", key, "state", "pending")
    moved = moved + 1
  end
end
return moved
`)

// RequeueExpired moves back to queue's pending list, at most limit at a
// time, the tasks whose asynq lease expired more than grace ago, and
// returns how many it moved.
func (s *Store) RequeueExpired(ctx context.Context, queue string, grace time.Duration, limit int) (int, error) {
	keys := []string{asynqKey(queue, "active"), asynqKey(queue, "lease"), asynqKey(queue, "pending")}
	n, err := requeueExpiredScript.Run(ctx, s.rdb, keys, int64(grace/time.Second), AsynqTaskPrefix(queue), limit).Int()
	if err != nil {
		return 0, fmt.Errorf("requeue lease-expired tasks of %s: %w", queue, err)
	}
	return n, nil
}

// requeueLostScript puts back into the pending list those of the given
// tasks that asynq still has as active: tasks whose handler returned but
// whose completion asynq could not write (Redis froze under it). A task
// whose completion was written is gone or in another state, and is left
// alone.
//
// KEYS[1] active list  KEYS[2] lease zset  KEYS[3] pending list
// ARGV[1] task hash prefix  ARGV[2…] task ids
// Returns how many tasks it moved.
var requeueLostScript = redis.NewScript(`
local moved = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  if redis.call("HGET", key, "state") == "active" and redis.call("LREM", KEYS[1], 0, id) > 0 then
    redis.call("ZREM", KEYS[2], id)
    redis.call("RPUSH", KEYS[3], id)
    redis.call("HSET", key, "state", "pending")
    moved = moved + 1
  end
end
return moved
`)

// RequeueLost moves back to queue's pending list those of tasks ids that
// asynq still holds as active, and returns how many it moved. Call it
// only for tasks whose handler has returned, long enough ago for asynq to
// have written their completion.
func (s *Store) RequeueLost(ctx context.Context, queue string, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	keys := []string{asynqKey(queue, "active"), asynqKey(queue, "lease"), asynqKey(queue, "pending")}
	args := make([]any, 0, len(ids)+1)
	args = append(args, AsynqTaskPrefix(queue))
	for _, id := range ids {
		args = append(args, id)
	}
	n, err := requeueLostScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("requeue lost tasks of %s: %w", queue, err)
	}
	return n, nil
}
