package intake_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

const groupYAML = `
api:
  keys: ["k-0123456789abcdef"]
partners:
  - id: everyone
    match: all
    url: "https://all.example/c?e={event}&c={click_id}"
`

// Calls that arrive while earlier ones are being stored share one commit:
// their deliveries to one partner leave in one bundle task, and every
// call gets its own receipt.
func TestEnqueue_groupCommit(t *testing.T) {
	cb := setupClient(t, groupYAML)
	ctx := context.Background()
	release := intake.HoldCommits(t, cb.client)
	const n = 10
	type answer struct {
		rc  *intake.Receipt
		err error
	}
	answers := make(chan answer, n)
	for i := range n {
		go func() {
			rc, err := cb.client.Enqueue(ctx, &event.Event{ID: fmt.Sprintf("grp-%d", i), Name: "install", ClickID: fmt.Sprint(i)})
			answers <- answer{rc, err}
		}()
	}
	require.Eventually(t, func() bool { return intake.WaitingCommits(cb.client) == n }, 5*time.Second, time.Millisecond)
	require.Empty(t, answers, "no call answered before its event is stored")
	release()

	seen := map[string]bool{}
	for range n {
		a := <-answers
		require.NoError(t, a.err)
		require.Len(t, a.rc.Deliveries, 1)
		require.Equal(t, retry.StatusQueued, a.rc.Deliveries[0].Status)
		seen[a.rc.EventID] = true
	}
	require.Len(t, seen, n, "one receipt each")
	tasks, err := cb.insp.ListPendingTasks(wire.QueueDefault)
	require.NoError(t, err)
	require.Len(t, tasks, 1, "one task for the group's deliveries")
	require.Equal(t, wire.TypeDeliverBundle, tasks[0].Type)
	b, err := wire.DecodeBundle(tasks[0].Payload)
	require.NoError(t, err)
	require.Len(t, b, n)
}

// A caller that gives up while its event waits for a commit is told the
// outcome is unknown; the event is stored all the same, and its repeat is
// answered as a duplicate.
func TestEnqueue_groupCommitCallerGivesUp(t *testing.T) {
	cb := setupClient(t, groupYAML)
	release := intake.HoldCommits(t, cb.client)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := cb.client.Enqueue(ctx, &event.Event{ID: "grp-gone", Name: "install", ClickID: "c"})
		errc <- err
	}()
	require.Eventually(t, func() bool { return intake.WaitingCommits(cb.client) == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-errc, intake.ErrUnavailable)
	release()

	require.Eventually(t, func() bool {
		return cb.rdb.Exists(context.Background(), store.EventKey("grp-gone")).Val() == 1
	}, 5*time.Second, 5*time.Millisecond, "the event of a caller that gave up is stored")
	rc, err := cb.client.Enqueue(context.Background(), &event.Event{ID: "grp-gone", Name: "install", ClickID: "c"})
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
}
