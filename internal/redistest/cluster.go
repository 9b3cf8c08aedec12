package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters started for one test.
type Cluster struct {
	// Addrs are the masters' host:port.
	Addrs []string
}

// URL is a redis+cluster:// URL naming every master.
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs, ",") }

// StartCluster starts a Redis Cluster of n masters without replicas on
// loopback, its slots dealt out evenly by redis-cli --cluster create, for
// the test alone; it is stopped when the test ends. It skips the test
// when redis-server or redis-cli is not on PATH (Debian: redis-tools,
// installed with redis-server).
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not on PATH: a cluster test needs it", bin)
		}
	}
	dir := t.TempDir()
	c := &Cluster{}
	for range n {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		startNode(t, dir, port)
		c.Addrs = append(c.Addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	out, err := exec.CommandContext(ctx, "redis-cli", append(args, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v: %s", err, out)
	}
	for _, addr := range c.Addrs {
		rc := redis.NewClient(&redis.Options{Addr: addr})
		deadline := time.Now().Add(30 * time.Second)
		for {
			info, err := rc.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				_ = rc.Close()
				t.Fatalf("cluster node %s not ok: %v %s", addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = rc.Close()
	}
	return c
}

// Node returns a client of master i alone (not the cluster), for reading
// its own INFO.
func (c *Cluster) Node(t testing.TB, i int) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: c.Addrs[i]})
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

func startNode(t testing.TB, dir string, port int) {
	t.Helper()
	p := strconv.Itoa(port)
	logf, err := os.Create(filepath.Join(dir, "redis-"+p+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", "--port", p, "--bind", "127.0.0.1", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
		"--cluster-config-file", "nodes-"+p+".conf", "--dbfilename", "dump-"+p+".rdb", "--dir", dir)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + p, MaxRetries: -1})
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rc.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d does not answer (log: %s)", port, tail(logf.Name()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CommandCalls sums the calls of every command in rc's INFO commandstats.
func CommandCalls(ctx context.Context, rc *redis.Client) (int64, error) {
	info, err := rc.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, line := range strings.Split(info, "\r\n") {
		if !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		_, rest, _ := strings.Cut(line, ":")
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				c, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("commandstats %q: %w", line, err)
				}
				n += c
			}
		}
	}
	return n, nil
}
