//go:build faults

package faults

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// startClusterWithReplicas starts 3 masters and 3 replicas, one replica a
// master, joined by redis-cli --cluster create, with a short node timeout
// so that a dead master's replica takes over within seconds. It returns
// the redis+cluster:// URL and every node's port.
func startClusterWithReplicas(t *testing.T) (url string, ports []int) {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli is not on PATH: it creates the cluster (Debian: redis-tools, installed with redis-server)")
	}
	dir := t.TempDir()
	var hosts []string
	for range 6 {
		port := freePort(t)
		rawRedis(t, dir, port, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--save", "", "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port), "--dbfilename", fmt.Sprintf("dump-%d.rdb", port))
		ports = append(ports, port)
		hosts = append(hosts, "127.0.0.1:"+strconv.Itoa(port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append(append([]string{"--cluster", "create"}, hosts...),
		"--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	require.NoError(t, err, "redis-cli --cluster create: %s", out)
	for _, port := range ports {
		rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
		eventually(t, 30*time.Second, func() bool {
			info, err := rc.ClusterInfo(context.Background()).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
			role := infoField(context.Background(), rc, "replication", "role")
			return role == "master" || infoField(context.Background(), rc, "replication", "master_link_status") == "up"
		}, func() string { return fmt.Sprintf("node %d: cluster not ok, or replica not in sync", port) })
		rc.Close()
	}
	return "redis+cluster://" + strings.Join(hosts[:3], ","), ports
}

// Redis Cluster, 3 masters with a replica each, redis.shards 6, under
// load: one master is killed (SIGKILL) and its replica promoted. The API
// answers 503 for the dead master's shards until the promotion, clients
// repeat, and every event still flows. Replication is asynchronous and
// api.wait_replicas is refused on a cluster, so an event answered 202 in
// the instant before the kill can be lost with the master: the loss is
// measured, and bounded here.
func TestClusterFailover(t *testing.T) {
	ctx := bound(t, 3*time.Minute)
	url, ports := startClusterWithReplicas(t)
	p := newPartner(t)
	cfg := writeConfig(t, p.URL, "", "redis:\n  shards: 6\n")
	api := startPostback(t, "api", "api", url, cfg)
	startPostback(t, "worker", "worker", url, cfg, "--concurrency", "50")

	l := newLoader(t, api.URL, "clfail")
	stop, stopLoad := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); l.sendFor(ctx, stop, 4, 5*time.Millisecond) }()
	time.Sleep(4 * time.Second)

	// Kill the first master, as a crash would.
	victim := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(ports[0])})
	require.Equal(t, "master", infoField(ctx, victim, "replication", "role"))
	pid, err := strconv.Atoi(infoField(ctx, victim, "server", "process_id"))
	require.NoError(t, err)
	victim.Close()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	killed := time.Now()
	survivor := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(ports[1])})
	defer survivor.Close()
	eventually(t, 60*time.Second, func() bool {
		info, err := survivor.ClusterInfo(ctx).Result()
		masters := clusterMasters(ctx, survivor)
		return err == nil && strings.Contains(info, "cluster_state:ok") && len(masters) == 3 && !masters["127.0.0.1:"+strconv.Itoa(ports[0])]
	}, func() string { return "the dead master's replica was not promoted" })
	promoted := time.Since(killed)
	time.Sleep(5 * time.Second)
	stopLoad()
	<-done

	// Once the cluster is whole again it takes everything.
	after := newLoader(t, api.URL, "clfail-after")
	after.sendN(ctx, 300, 8)
	require.Len(t, after.Accepted(), 300, "answers %v", after.Statuses())
	waitDelivered(t, p, after.Accepted(), time.Minute)

	accepted := l.Accepted()
	last, lastChange := -1, time.Now()
	for end := time.Now().Add(time.Minute); time.Now().Before(end) && time.Since(lastChange) < 10*time.Second; {
		n := p.delivered(accepted)
		if n == len(accepted) {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	lost := p.check(accepted).Missing
	t.Logf("master killed; its replica promoted %v later; %d events accepted around it, answers %v, %d lost, %d seen twice",
		promoted.Round(time.Millisecond), len(accepted), l.Statuses(), len(lost), p.seenTwice())
	require.NotEmpty(t, accepted)
	// What a dead master took and had not yet sent to its replica is
	// gone: a few writes of the last milliseconds, at this load.
	require.LessOrEqual(t, len(lost), max(5, len(accepted)/100), "lost %s", sample(lost))
}

// clusterMasters is the set of masters that serve slots, as rc sees them.
func clusterMasters(ctx context.Context, rc *redis.Client) map[string]bool {
	slots, err := rc.ClusterSlots(ctx).Result()
	if err != nil {
		return nil
	}
	masters := map[string]bool{}
	for _, s := range slots {
		if len(s.Nodes) > 0 {
			masters[s.Nodes[0].Addr] = true
		}
	}
	return masters
}
