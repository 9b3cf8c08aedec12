//go:build faults

package faults

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

// rawRedis starts `redis-server args...` in dir, for topologies redistest
// does not build (sentinels read a config file they rewrite; cluster
// nodes keep a nodes file), and waits until it answers PING.
func rawRedis(t *testing.T, dir string, port int, args ...string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server %v: %v", args, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	defer rc.Close()
	eventually(t, 10*time.Second, func() bool { return rc.Ping(context.Background()).Err() == nil }, func() string {
		b, _ := os.ReadFile(logf.Name())
		return fmt.Sprintf("redis-server %v does not answer:\n%s", args, b)
	})
}

// infoField reads one field of an INFO section.
func infoField(ctx context.Context, rc *redis.Client, section, field string) string {
	info, err := rc.Info(ctx, section).Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}
