package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/retry"
)

// runMainEnv makes the test binary run postback (see TestMain).
const runMainEnv = "POSTBACK_TEST_RUN_MAIN"

// process is a postback process a test started.
type process struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProcess runs `postback args…` as a process of its own (this test
// binary, as TestMain lets it) and stops it with SIGTERM when the test
// ends.
func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(os.Args[0], args...)}
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("postback %s:\n%s", strings.Join(args, " "), p.logs())
		}
	})
	return p
}

// A pause holds every delivery in two worker processes for longer than
// the partner's max_age, with no attempt spent and no dead letter; a
// resume delivers them all, once each.
func TestPause_TwoWorkerProcesses(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs a real redis-server")
	}
	partner := stacktest.NewPartner(t)
	cfgPath := filepath.Join(t.TempDir(), "postback.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`
delivery:
  allow_private_networks: true
partners:
  - id: acme
    match: all
    url: "`+partner.URL+`/pb?e={event_id}"
    retry: {max_age: 3s, initial_interval: 1s, max_interval: 1s}
`), 0o600))
	url := redistest.DB(t)
	ctx := context.Background()
	global := []string{"--config", cfgPath, "--redis-url", url}

	r := runCLI(append(global, "partners", "pause", "acme", "--reason", "maintenance")...)
	require.Equal(t, 0, r.code, r.stderr)
	workers := []*process{
		startProcess(t, append(global, "--log-format", "json", "--log-level", "debug", "worker", "--concurrency", "10")...),
		startProcess(t, append(global, "--log-format", "json", "--log-level", "debug", "worker", "--concurrency", "10")...),
	}

	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	rdb, err := store.OpenRedis(url)
	require.NoError(t, err)
	defer rdb.Close()
	client, err := intake.NewClient(intake.ClientConfig{Redis: rdb, Config: config.NewLive(cfg)})
	require.NoError(t, err)
	defer client.Close()
	const n = 40
	var ids []string
	for i := range n {
		rc, err := client.Enqueue(ctx, &event.Event{ID: fmt.Sprintf("held-%d", i), Name: "install"})
		require.NoError(t, err)
		ids = append(ids, rc.Deliveries[0].ID)
	}

	// Both processes hold deliveries, for twice max_age.
	require.Eventually(t, func() bool {
		for _, w := range workers {
			if !strings.Contains(w.logs(), `"reason":"partner paused"`) {
				return false
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond, "each worker process holds some deliveries")
	time.Sleep(6 * time.Second)
	require.Empty(t, partner.Requests(), "nothing sent while paused")
	st := store.New(rdb)
	for _, id := range ids {
		rec, err := st.Get(ctx, id)
		if err == nil {
			require.Zero(t, rec.Attempts, "no attempt spent: %+v", rec)
			require.NotEqual(t, retry.StatusDead, rec.Status)
		} else {
			require.ErrorIs(t, err, store.ErrNotFound)
		}
	}
	dlq, err := st.DLQSize(ctx, "acme")
	require.NoError(t, err)
	require.Zero(t, dlq, "no dead letter past max_age")

	r = runCLI(append(global, "partners", "resume", "acme")...)
	require.Equal(t, 0, r.code, r.stderr)
	got := partner.WaitRequests(t, n, 30*time.Second)
	seen := map[string]int{}
	for _, req := range got {
		seen[req.URL]++
	}
	require.Len(t, seen, n, "every held delivery delivered")
	for _, id := range ids {
		rec, err := st.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, retry.StatusDelivered, rec.Status)
		require.Equal(t, 1, rec.Attempts)
	}
	time.Sleep(time.Second)
	require.Len(t, partner.Requests(), n, "once each")
}

// runCLI runs postback in this process.
func runCLI(args ...string) cliResult {
	var out, errOut bytes.Buffer
	code := run(append([]string{"postback"}, args...), &out, &errOut)
	return cliResult{code: code, stdout: out.String(), stderr: errOut.String()}
}
