//go:build faults

package faults

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// sentinelSet is 1 master, 1 replica and 3 sentinels on loopback ports.
type sentinelSet struct {
	master, replica int
	sentinels       []int
}

func (s sentinelSet) URL() string {
	hosts := make([]string, len(s.sentinels))
	for i, p := range s.sentinels {
		hosts[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return "redis+sentinel://" + strings.Join(hosts, ",") + "/mymaster/0"
}

// startSentinelSet starts the set; extra are redis-server arguments for
// the master and the replica.
func startSentinelSet(t *testing.T, extra ...string) sentinelSet {
	t.Helper()
	dir := t.TempDir()
	s := sentinelSet{master: freePort(t), replica: freePort(t)}
	common := append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"}, extra...)
	rawRedis(t, dir, s.master, append([]string{"--port", strconv.Itoa(s.master), "--dbfilename", "m.rdb"}, common...)...)
	rawRedis(t, dir, s.replica, append([]string{"--port", strconv.Itoa(s.replica), "--dbfilename", "r.rdb",
		"--replicaof", "127.0.0.1", strconv.Itoa(s.master)}, common...)...)
	for i := range 3 {
		port := freePort(t)
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `port %d
bind 127.0.0.1
protected-mode no
sentinel monitor mymaster 127.0.0.1 %d 2
sentinel down-after-milliseconds mymaster 2000
sentinel failover-timeout mymaster 10000
sentinel parallel-syncs mymaster 1
`, port, s.master), 0o600))
		rawRedis(t, dir, port, conf, "--sentinel")
		s.sentinels = append(s.sentinels, port)
	}
	// Ready when the replica is in sync and every sentinel knows the
	// replica and the two other sentinels.
	ctx := context.Background()
	rep := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(s.replica)})
	defer rep.Close()
	eventually(t, 30*time.Second, func() bool { return infoField(ctx, rep, "replication", "master_link_status") == "up" },
		func() string { return "replica not in sync" })
	for _, port := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
		eventually(t, 30*time.Second, func() bool {
			reps, err1 := sc.Replicas(ctx, "mymaster").Result()
			sens, err2 := sc.Sentinels(ctx, "mymaster").Result()
			return err1 == nil && err2 == nil && len(reps) == 1 && len(sens) == 2
		}, func() string { return fmt.Sprintf("sentinel %d does not see the replica and 2 sentinels", port) })
		sc.Close()
	}
	return s
}

// failoverRun is what one forced failover under load did.
type failoverRun struct {
	accepted  map[string]string // answered 202 before, during and after
	statuses  map[int]int
	lost      []string // accepted, never delivered
	promoted  time.Duration
	converted time.Duration // until the old master turned replica
	partner   *partner
}

// runFailover starts the set with extra redis-server arguments, an API and
// a worker on redis+sentinel://, keeps events coming, forces SENTINEL
// FAILOVER, waits until the old master has become a replica of the new one,
// then 5 s more; then it requires that 500 new events are all delivered,
// and counts what reached the partner of the events sent around the
// failover.
func runFailover(t *testing.T, apiYAML string, extra ...string) failoverRun {
	ctx := bound(t, 3*time.Minute)
	set := startSentinelSet(t, extra...)
	p := newPartner(t)
	cfg := writeConfig(t, p.URL, "")
	if apiYAML != "" {
		b, err := os.ReadFile(cfg)
		require.NoError(t, err)
		b = []byte(strings.Replace(string(b), "  dedup_window: 1h\n", "  dedup_window: 1h\n"+apiYAML, 1))
		require.NoError(t, os.WriteFile(cfg, b, 0o600))
	}
	api := startPostback(t, "api", "api", set.URL(), cfg)
	startPostback(t, "worker", "worker", set.URL(), cfg, "--concurrency", "50")

	l := newLoader(t, api.URL, "sentinel")
	stop, stopLoad := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); l.sendFor(ctx, stop, 4, 5*time.Millisecond) }()
	time.Sleep(3 * time.Second)

	sc := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(set.sentinels[0])})
	defer sc.Close()
	old := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(set.master)})
	defer old.Close()
	require.NoError(t, sc.Failover(ctx, "mymaster").Err())
	var run failoverRun
	start := time.Now()
	eventually(t, 30*time.Second, func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
		return err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(set.replica)
	}, func() string { return "the replica was not promoted" })
	run.promoted = time.Since(start)
	eventually(t, 60*time.Second, func() bool { return infoField(ctx, old, "replication", "role") == "slave" },
		func() string { return "the old master did not become a replica" })
	run.converted = time.Since(start)
	time.Sleep(5 * time.Second)
	stopLoad()
	<-done

	// Once the sentinels are done, the new master takes everything.
	after := newLoader(t, api.URL, "sentinel-after")
	after.sendN(ctx, 500, 8)
	require.Len(t, after.Accepted(), 500, "answers %v", after.Statuses())
	waitDelivered(t, p, after.Accepted(), time.Minute)

	run.accepted, run.statuses, run.partner = l.Accepted(), l.Statuses(), p
	require.NotEmpty(t, run.accepted)
	// Wait until all arrived, or nothing more arrived for 10 s.
	last, lastChange := -1, time.Now()
	for end := time.Now().Add(time.Minute); time.Now().Before(end) && time.Since(lastChange) < 10*time.Second; {
		n := p.delivered(run.accepted)
		if n == len(run.accepted) {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	run.lost = p.check(run.accepted).Missing
	return run
}

// Redis Sentinel, with the settings postback recommends: the master
// refuses writes while no replica is connected (min-replicas-to-write 1).
// Across a forced failover the API answers 503 for a few seconds and
// clients send again; at most a write or two that reached the old master in
// the instant after the promotion is lost (none in most runs).
func TestSentinelFailover(t *testing.T) {
	run := runFailover(t, "", "--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")
	t.Logf("replica promoted %v after SENTINEL FAILOVER, old master a replica after %v; %d events accepted, answers %v, %d lost, %d seen twice",
		run.promoted.Round(time.Millisecond), run.converted.Round(time.Millisecond), len(run.accepted), run.statuses,
		len(run.lost), run.partner.seenTwice())
	// The master only refuses writes once it notices its replica is gone
	// (the link drops, or min-replicas-max-lag passes): a write or two can
	// still land on it after the promotion. api.wait_replicas closes that
	// window (TestSentinelFailover_waitReplicas).
	require.LessOrEqual(t, len(run.lost), max(1, len(run.accepted)/100), "lost %s", sample(run.lost))
}

// Redis Sentinel with api.wait_replicas: 1. An event is answered 202 only
// once the replica has its writes, so the replica that the failover
// promotes has every accepted event: none is lost. What the old master
// took after the promotion never reaches a replica, and is answered 503.
func TestSentinelFailover_waitReplicas(t *testing.T) {
	run := runFailover(t, "  wait_replicas: 1\n  wait_timeout: 500ms\n")
	t.Logf("replica promoted %v after SENTINEL FAILOVER, old master a replica after %v; %d events accepted, answers %v, %d lost, %d seen twice",
		run.promoted.Round(time.Millisecond), run.converted.Round(time.Millisecond), len(run.accepted), run.statuses,
		len(run.lost), run.partner.seenTwice())
	require.Empty(t, run.lost, "accepted events lost: %s", sample(run.lost))
	// The window was there: what the old master took after the promotion
	// had no replica to acknowledge it, and was answered 503.
	require.Positive(t, run.statuses[503], "no event met the failover window; the run proves nothing")
}

// Redis Sentinel with plain asynchronous replication. After SENTINEL
// FAILOVER the old master stays a master until the sentinels reconfigure it
// (up to ~10 s, their INFO period); clients still connected to it keep
// writing there, and all of that is thrown away when it resyncs from the
// new master. The test reports the loss; runFailover requires that
// deliveries go on once the sentinels are done.
func TestSentinelFailover_asyncReplication(t *testing.T) {
	run := runFailover(t, "")
	t.Logf("replica promoted %v after SENTINEL FAILOVER, old master a replica after %v; %d events accepted, answers %v; "+
		"LOST %d accepted events (written to the old master after the promotion); %d seen twice",
		run.promoted.Round(time.Millisecond), run.converted.Round(time.Millisecond), len(run.accepted), run.statuses,
		len(run.lost), run.partner.seenTwice())
}
