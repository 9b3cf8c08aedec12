package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// WakeChannel is the Pub/Sub channel on which intake tells idle workers
// that it stored deliveries. A message carries nothing: it is a hint to
// look at the queues now, never the only way a task is found (an idle
// worker still polls, slowly), so a message lost with a connection costs
// latency, not a delivery.
const WakeChannel = Prefix + "wake"

// Wake publishes a wake-up on WakeChannel.
func (s *Store) Wake(ctx context.Context) error {
	return s.rdb.Publish(ctx, WakeChannel, "").Err()
}

// SubscribeWake subscribes to WakeChannel. The caller closes the PubSub.
func SubscribeWake(ctx context.Context, rdb redis.UniversalClient) *redis.PubSub {
	return rdb.Subscribe(ctx, WakeChannel)
}
