//go:build faults

package faults

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// startCluster starts 3 cluster-enabled masters on loopback, joins them
// with redis-cli --cluster create, and returns a redis+cluster:// URL.
func startCluster(t *testing.T) (url string, ports []int) {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli is not on PATH: it creates the cluster (Debian: redis-tools, installed with redis-server)")
	}
	dir := t.TempDir()
	var hosts []string
	for range 3 {
		port := freePort(t)
		rawRedis(t, dir, port, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port), "--dbfilename", fmt.Sprintf("dump-%d.rdb", port))
		ports = append(ports, port)
		hosts = append(hosts, "127.0.0.1:"+strconv.Itoa(port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append(append([]string{"--cluster", "create"}, hosts...),
		"--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	require.NoError(t, err, "redis-cli --cluster create: %s", out)
	for _, port := range ports {
		rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
		eventually(t, 30*time.Second, func() bool {
			info, err := rc.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		}, func() string { return fmt.Sprintf("node %d: cluster not ok", port) })
		rc.Close()
	}
	return "redis+cluster://" + strings.Join(hosts, ","), ports
}

// Redis Cluster (3 masters, redis.shards 6): events go in through the
// API and out to the partner, every delivery's record says delivered,
// and a partner that answers 400 gets its deliveries dead-lettered (the
// dead-letter script touches a delivery's keys and its partner's DLQ
// index at once), spread over the shards.
func TestCluster(t *testing.T) {
	ctx := bound(t, 2*time.Minute)
	url, ports := startCluster(t)
	p := newPartner(t)
	reject := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such click", http.StatusBadRequest)
	}))
	defer reject.Close()
	// A partner with the lifecycle rules, whose scripts read the
	// records of other deliveries: on a cluster they must stay in one
	// slot (dedup places the partner's deliveries in one shard).
	ordered := newPartner(t)
	cfg := writeConfig(t, p.URL, "", `  - id: rejecter
    match: all
    url: "`+reject.URL+`/r?e={event_id}"
  - id: ordered
    match: all
    url: "`+ordered.URL+`/pb?e={event_id}"
    order_by: click_id
    dedup: {key: "{click_id}:{event}", window: 1h}
redis:
  shards: 6
`)
	api := startPostback(t, "api", "api", url, cfg)
	w := startPostback(t, "worker", "worker", url, cfg, "--concurrency", "50")

	const n = 1000
	l := newLoader(t, api.URL, "cluster")
	l.sendN(ctx, n, 8)
	accepted := l.Accepted()
	require.Len(t, accepted, n, "answers %v", l.Statuses())
	c := waitDelivered(t, p, accepted, time.Minute)
	require.Zero(t, c.Duplicates)
	toOrdered := make(map[string]string, len(accepted))
	for ev := range accepted {
		toOrdered[ev] = wire.DeliveryID(ev, "ordered")
	}
	c = waitDelivered(t, ordered, toOrdered, time.Minute)
	require.Zero(t, c.Duplicates)

	// Each delivery's outcome is recorded, and the rejecting partner's
	// dead letters are in its DLQ.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:" + strconv.Itoa(ports[0])}})
	defer cc.Close()
	st := store.NewSharded(cc, 6)
	dead := func() int64 { n, _ := st.DLQSizeAll(ctx, "rejecter"); return n }
	eventually(t, time.Minute, func() bool { return dead() == n }, func() string {
		return fmt.Sprintf("%d of %d dead letters in the rejecting partner's DLQ", dead(), n)
	})
	notRecorded := 0
	var sample string
	shards := map[int]int{}
	for _, dlv := range accepted {
		rec, in, err := st.GetAny(ctx, dlv)
		if err != nil || rec.Status != retry.StatusDelivered {
			notRecorded++
			sample = fmt.Sprintf("%s: %+v (%v)", dlv, rec, err)
			continue
		}
		shards[in.Index()]++
	}
	require.Len(t, shards, 6, "deliveries in every shard: %v", shards)
	if notRecorded > 0 {
		t.Errorf("%d of %d delivered postbacks not recorded as delivered, e.g. %s; worker errors: %d",
			notRecorded, n, sample, w.countLog("delivered but not recorded"))
	}
}

// Redis Cluster (3 masters, redis.shards 6), 3,000 events to two
// partners through a real API and worker: every event reaches both
// partners, and each master carries at least a fifth of the commands
// (INFO commandstats), where one shard would put nearly all of them on
// one master.
func TestClusterShardsSpread(t *testing.T) {
	ctx := bound(t, 3*time.Minute)
	url, ports := startCluster(t)
	p, q := newPartner(t), newPartner(t)
	cfg := writeConfig(t, p.URL, "", `  - id: beta
    match: all
    url: "`+q.URL+`/pb?e={event_id}"
redis:
  shards: 6
`)
	nodes := make([]*redis.Client, len(ports))
	before := make([]int64, len(ports))
	for i, port := range ports {
		nodes[i] = redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
		defer nodes[i].Close()
		var err error
		before[i], err = redistest.CommandCalls(ctx, nodes[i])
		require.NoError(t, err)
	}
	api := startPostback(t, "api", "api", url, cfg)
	startPostback(t, "worker", "worker", url, cfg, "--concurrency", "50")

	const n = 3000
	l := newLoader(t, api.URL, "spread")
	l.sendN(ctx, n, 16)
	accepted := l.Accepted()
	require.Len(t, accepted, n, "answers %v", l.Statuses())
	c := waitDelivered(t, p, accepted, 2*time.Minute)
	require.Zero(t, c.Duplicates)
	toBeta := make(map[string]string, n)
	for ev := range accepted {
		toBeta[ev] = wire.DeliveryID(ev, "beta")
	}
	c = waitDelivered(t, q, toBeta, 2*time.Minute)
	require.Zero(t, c.Duplicates)

	var total int64
	calls := make([]int64, len(ports))
	for i := range nodes {
		after, err := redistest.CommandCalls(ctx, nodes[i])
		require.NoError(t, err)
		calls[i] = after - before[i]
		total += calls[i]
	}
	t.Logf("%d events to two partners over 6 shards on 3 masters: commands per master %v (%.0f%%, %.0f%%, %.0f%%)",
		n, calls, 100*float64(calls[0])/float64(total), 100*float64(calls[1])/float64(total), 100*float64(calls[2])/float64(total))
	for i, k := range calls {
		require.GreaterOrEqual(t, 5*k, total, "master %d ran %d of %d commands: %v", i, k, total, calls)
	}
}
