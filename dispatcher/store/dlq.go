package store

import (
	"context"
	"fmt"
	"github.com/redis/go-redis/v9"
	"time"
)

// deadScript moves a delivery into its partner's dead-letter queue. The
// record and history lose their expiry: a dead letter stays until it is
// retried or purged.
//
// KEYS[1] delivery key
// KEYS[2] attempts key
// KEYS[3] partner DLQ index
// KEYS[4] DLQ partners set
// ARGV[1] delivery id  ARGV[2] partner  ARGV[3] event id
// ARGV[4] reason       ARGV[5] now (ms) ARGV[6] task payload
var deadScript = redis.NewScript(`
redis.call("HSET", KEYS[1], "status", "dead", "reason", ARGV[4], "partner", ARGV[2],
  "event", ARGV[3], "updated", ARGV[5], "dead_at", ARGV[5], "payload", ARGV[6])
redis.call("PERSIST", KEYS[1])
redis.call("PERSIST", KEYS[2])
redis.call("ZADD", KEYS[3], ARGV[5], ARGV[1])
redis.call("SADD", KEYS[4], ARGV[2])
return nil
`)

// DeadLetter moves delivery m to its partner's dead-letter queue with
// reason, keeping payload (the full delivery task) for a replay.
func (s *Store) DeadLetter(ctx context.Context, m Meta, reason string, payload []byte, now time.Time) error {
	err := deadScript.Run(ctx, s.rdb,
		[]string{DeliveryKey(m.ID), AttemptsKey(m.ID), DLQKey(m.Partner), DLQPartnersKey},
		m.ID, m.Partner, m.EventID, reason, now.UnixMilli(), payload).Err()
	if err != nil && !isNil(err) {
		return fmt.Errorf("dead-letter %s: %w", m.ID, err)
	}
	return nil
}
