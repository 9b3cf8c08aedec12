package opsevent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/opsevent"
	"github.com/postbackhq/postback/internal/stacktest"
)

// An ops webhook goes through the SSRF guard as postbacks do: one on a
// loopback address gets nothing while allow_private_networks is off, and
// the event stays queued for retries.
func TestEvents_SSRFGuard(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	yaml := strings.NewReplacer("OPS", rcv.URL, "PARTNER", "https://pb.example", "SECRET", opsSecret).Replace(circuitYAML)
	yaml = strings.Replace(yaml, "allow_private_networks: true", "allow_private_networks: false", 1)
	s := stacktest.New(t, yaml, stacktest.Options{})
	ctx := context.Background()
	_, err := ops.PausePartner(ctx, s.Redis, s.Live.Load(), "wobbly", "guard test", "cli", time.Now())
	require.NoError(t, err)

	insp := asynq.NewInspectorFromRedisClient(s.Redis)
	require.Eventually(t, func() bool {
		tasks, err := insp.ListRetryTasks(opsevent.QueueOps)
		return err == nil && len(tasks) == 1 && strings.Contains(tasks[0].LastErr, "blocked")
	}, 20*time.Second, 100*time.Millisecond, "the send was blocked and is retried")
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	require.Empty(t, rcv.events)
	require.Zero(t, rcv.bad, "nothing reached the receiver")
}
