package delivery_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/wire"
)

// wakeStack is a stack of one partner p1 at p, with a worker of two
// processors whose lead looks at the queues as it starts and then only
// every idlePoll. Wake-ups cross Redis databases (Pub/Sub channels are
// the server's), so the tests that use it are not parallel: another
// test's events would wake their workers.
func wakeStack(t *testing.T, p *stacktest.Partner, idlePoll, idleAfter time.Duration) (*stacktest.Stack, *delivery.Worker) {
	t.Helper()
	yaml := strings.NewReplacer("PARTNER", p.URL, "RETRY", stacktest.ShortRetry, "TIMEOUT", "2s").Replace(stacktest.RetryYAML)
	s := stacktest.New(t, yaml, stacktest.Options{NoWorker: true})
	w, err := delivery.NewWorker(delivery.WorkerConfig{
		Redis: s.Redis, Config: s.Live, Concurrency: 4, Dequeuers: 2,
		PollInterval: 10 * time.Millisecond, IdlePollInterval: idlePoll, IdleAfter: idleAfter,
		ShutdownTimeout: 5 * time.Second,
	})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	t.Cleanup(w.Shutdown)
	require.False(t, w.Awake(), "a worker starts idle")
	// Let the lead's look at its start pass, so that what follows is
	// found by a woken processor or not at all.
	time.Sleep(300 * time.Millisecond)
	return s, w
}

// TestWorker_WakesOnEnqueue: each event reaches the partner; between
// events the worker goes idle again, and the next event wakes new
// processors (an asynq server cannot be started twice). The lead looks
// at the queues only every second or so: the wake-up is what starts the
// processor that takes the event (TestScaler_WakesOnPublish checks the
// wake-up alone).
func TestWorker_WakesOnEnqueue(t *testing.T) {
	p := stacktest.NewPartner(t)
	s, w := wakeStack(t, p, time.Second, 200*time.Millisecond)
	for i := range 3 {
		_, err := s.Client.Enqueue(context.Background(), &event.Event{ID: fmt.Sprintf("evt-wake-%d", i), Name: "install"})
		require.NoError(t, err)
		got := p.WaitRequests(t, i+1, 10*time.Second)
		require.Contains(t, got[i].URL, fmt.Sprintf("e=evt-wake-%d", i))
		require.Eventually(t, func() bool { return !w.Awake() }, 10*time.Second, 10*time.Millisecond, "idle again after the event")
	}
	require.Len(t, p.Requests(), 3, "each event sent once")
}

// TestWorker_WakesOnTaskOfLead: a task that comes without a wake-up (here
// enqueued straight with asynq) is found by the lead's slow poll, and the
// lead taking it wakes the other processors.
func TestWorker_WakesOnTaskOfLead(t *testing.T) {
	p := stacktest.NewPartner(t)
	s, w := wakeStack(t, p, 50*time.Millisecond, time.Minute)
	q := asynq.NewClientFromRedisClient(s.Redis)
	_, err := q.Enqueue(asynq.NewTask(wire.TypeDeliver, []byte{0x09, 1, 2}), asynq.Queue(wire.QueueDefault))
	require.NoError(t, err)
	require.Eventually(t, w.Awake, 10*time.Second, 10*time.Millisecond, "awake once the lead took a task")
}
