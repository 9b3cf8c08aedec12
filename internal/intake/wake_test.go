package intake_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/store"
)

// TestClient_Enqueue_WakesWorkers: storing an event publishes a wake-up
// for idle workers.
func TestClient_Enqueue_WakesWorkers(t *testing.T) {
	t.Parallel()
	b := setupClient(t, clientYAML)
	ctx := context.Background()
	sub := store.SubscribeWake(ctx, b.rdb)
	t.Cleanup(func() { _ = sub.Close() })
	_, err := sub.Receive(ctx) // the subscription's confirmation: it is in place
	require.NoError(t, err)
	_, err = b.client.Enqueue(ctx, &event.Event{ID: "evt-wake", Name: "install"})
	require.NoError(t, err)
	select {
	case msg := <-sub.Channel():
		require.Equal(t, store.WakeChannel, msg.Channel)
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up published")
	}
}
