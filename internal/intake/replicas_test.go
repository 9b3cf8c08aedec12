package intake_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
)

const waitReplicasYAML = `
api:
  keys: ["${api_key}"]
  wait_replicas: 1
  wait_timeout: 1s
delivery: {allow_private_networks: true}
partners:
  - id: repl
    url: "https://repl.example/pb?c={click_id}"
`

func replicationInfo(t *testing.T, rdb *redis.Client, field string) string {
	t.Helper()
	info, err := rdb.Info(context.Background(), "replication").Result()
	require.NoError(t, err)
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}

// TestClient_Enqueue_waitReplicas: with api.wait_replicas an event is
// answered as stored only once a replica has it. Without a replica the
// answer is ErrUnavailable though the master has the event; once a replica
// has caught up, the repeat is answered as the duplicate it is, and the
// replica holds the claim and the task. A stalled replica makes a whole
// batch unavailable.
func TestClient_Enqueue_waitReplicas(t *testing.T) {
	if !redistest.Real() {
		t.Skip("WAIT needs a real redis-server; the embedded one has no replicas")
	}
	ctx := context.Background()
	master := redistest.Own(t, redistest.Options{})
	s := stacktest.New(t, waitReplicasYAML, stacktest.Options{RedisURL: master.URL(0), NoWorker: true})
	ev := &event.Event{ID: "evt-wait-1", Name: "purchase", Timestamp: time.Now().UTC(), ClickID: "c1"}
	ev.Attribution.Partner = "repl"

	_, err := s.Client.Enqueue(ctx, ev)
	require.ErrorIs(t, err, intake.ErrUnavailable)
	require.ErrorIs(t, err, intake.ErrNotReplicated)
	require.ErrorContains(t, err, "0 of 1 replicas acknowledged it within 1s")
	exists, err := s.Redis.Exists(ctx, store.EventKey(ev.ID)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, exists, "the master has it all the same")

	host, port, _ := strings.Cut(master.Addr(), ":")
	replica := redistest.Own(t, redistest.Options{Args: []string{"--replicaof", host, port}})
	rep := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { _ = rep.Close() })
	require.Eventually(t, func() bool { return replicationInfo(t, rep, "master_link_status") == "up" },
		20*time.Second, 50*time.Millisecond, "replica never in sync")
	// The replica's link is up before the master counts its acks: wait
	// until a WAIT of our own is acknowledged.
	require.Eventually(t, func() bool {
		n, err := s.Redis.Do(ctx, "wait", 1, 100).Int()
		return err == nil && n == 1
	}, 20*time.Second, 50*time.Millisecond, "the master never counted the replica")

	rc, err := s.Client.Enqueue(ctx, ev)
	require.NoError(t, err)
	require.True(t, rc.Duplicate)
	require.Len(t, rc.Deliveries, 1)
	n, err := rep.Exists(ctx, store.EventKey(ev.ID)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the replica has the claim")
	keys, err := rep.Keys(ctx, "asynq:*"+rc.Deliveries[0].ID).Result()
	require.NoError(t, err)
	require.Len(t, keys, 1, "and the task")

	evs := []*event.Event{
		{ID: "evt-wait-2", Name: "purchase", Timestamp: time.Now().UTC(), ClickID: "c2", Attribution: event.Attribution{Partner: "repl"}},
		{ID: "evt-wait-3", Name: "purchase", Timestamp: time.Now().UTC(), ClickID: "c3", Attribution: event.Attribution{Partner: "repl"}},
	}
	for _, r := range s.Client.EnqueueBatch(ctx, evs) {
		require.NoError(t, r.Err)
	}

	require.NoError(t, replica.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = replica.Signal(syscall.SIGCONT) })
	evs[0].ID, evs[1].ID = "evt-wait-4", "evt-wait-5"
	for _, r := range s.Client.EnqueueBatch(ctx, evs) {
		require.ErrorIs(t, r.Err, intake.ErrUnavailable)
		require.ErrorContains(t, r.Err, "0 of 1 replicas")
	}
}

// TestNewClient_waitReplicasNotOnCluster: Redis Cluster replicates each
// master on its own, which one WAIT cannot cover; the client says so at
// start rather than answer every event 503.
func TestNewClient_waitReplicasNotOnCluster(t *testing.T) {
	cfg, err := config.Parse("postback.yaml", []byte("api:\n  wait_replicas: 1\n"), nil)
	require.NoError(t, err)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	t.Cleanup(func() { _ = rdb.Close() })
	_, err = intake.NewClient(intake.ClientConfig{Redis: rdb, Config: config.NewLive(cfg)})
	require.ErrorContains(t, err, "api.wait_replicas is not supported on Redis Cluster")
}

// TestClient_waitReplicas_coalesced: concurrent enqueues share replica
// waits (group commit). With no replica each wait lasts the whole
// wait_timeout; the 19 enqueues that finish their writes while the first
// one's wait runs are all answered by a single second round: two WAITs
// (two writes of the counter) for twenty events, however many connections
// they came on.
func TestClient_waitReplicas_coalesced(t *testing.T) {
	if !redistest.Real() {
		t.Skip("WAIT needs a real redis-server")
	}
	t.Parallel()
	ctx := context.Background()
	// Each call on its own: the waits, not the writes, are shared.
	s := stacktest.New(t, waitReplicasYAML, stacktest.Options{NoWorker: true, NoGroupCommit: true})
	enqueue := func(i int) error {
		ev := &event.Event{ID: fmt.Sprintf("evt-co-%d", i), Name: "purchase", Timestamp: time.Now().UTC(), ClickID: "c",
			Attribution: event.Attribution{Partner: "repl"}}
		_, err := s.Client.Enqueue(ctx, ev)
		return err
	}
	errs := make(chan error, 20)
	go func() { errs <- enqueue(0) }()
	require.Eventually(t, func() bool { return s.Redis.Get(ctx, store.ReplSyncKey).Val() == "1" },
		5*time.Second, 5*time.Millisecond, "the first round never began")
	for i := 1; i < 20; i++ {
		go func() { errs <- enqueue(i) }()
	}
	for range 20 {
		err := <-errs
		require.ErrorIs(t, err, intake.ErrNotReplicated)
	}
	require.Equal(t, "2", s.Redis.Get(ctx, store.ReplSyncKey).Val(), "one round for the first event, one for the other 19")
}

// TestStore_WaitReplicas_witnesses: the wait also reads, on the same
// connection, whether each caller's keys are on the master that answers
// it; around a failover the writes and the wait can reach different
// masters, and a caller whose event is not there must not be told it is
// replicated.
func TestStore_WaitReplicas_witnesses(t *testing.T) {
	ctx := context.Background()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	if !redistest.Real() {
		t.Skip("WAIT needs a real redis-server")
	}
	require.NoError(t, rdb.Set(ctx, store.EventKey("here"), "x", time.Minute).Err())
	require.NoError(t, rdb.Set(ctx, store.EventKey("here-too"), "x", time.Minute).Err())
	acked, present, err := store.New(rdb).WaitReplicas(ctx, 0, 10*time.Millisecond, [][]string{
		{store.EventKey("here"), store.EventKey("here-too")},
		{store.EventKey("here"), store.EventKey("gone")},
		nil,
	})
	require.NoError(t, err)
	require.Zero(t, acked)
	require.Equal(t, []bool{true, false, true}, present)
}
