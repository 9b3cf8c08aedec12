package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
)

const reloadKey = "0123456789abcdef0123"

// reloadYAML is a config whose partners send installs to PARTNER; EXTRA is
// replaced by more partner entries.
const reloadYAML = `api:
  keys: ["` + reloadKey + `"]
delivery:
  allow_private_networks: true
partners:
  - id: a
    match: all
    events: [install]
    url: "PARTNER/a?e={event_id}"
EXTRA`

const reloadPartnerC = `  - id: c
    match: all
    events: [install]
    url: "PARTNER/c?e={event_id}"
`

const reloadBroken = `  - id: c
    url: "PARTNER/c?e={evnt_id}"
`

func reloadConfig(partnerURL, extra string) string {
	return strings.ReplaceAll(strings.Replace(reloadYAML, "EXTRA", extra, 1), "PARTNER", partnerURL)
}

func partnerIDs(cfg *config.Config) []string {
	ids := make([]string, len(cfg.Partners))
	for i, p := range cfg.Partners {
		ids[i] = p.ID
	}
	return ids
}

func TestRuntime_Reload(t *testing.T) {
	t.Parallel()
	path := partnersFile(t, "postback.yaml", reloadConfig("https://p.example", ""))
	cfg, err := config.Load(path)
	require.NoError(t, err)
	var logs bytes.Buffer
	rt := &runtime{log: slog.New(slog.NewTextHandler(&logs, nil)), live: config.NewLive(cfg), cfgPath: path}

	require.NoError(t, os.WriteFile(path, []byte(reloadConfig("https://p.example", reloadPartnerC)), 0o600))
	require.NoError(t, rt.reload())
	require.Equal(t, []string{"a", "c"}, partnerIDs(rt.live.Load()))
	require.Contains(t, logs.String(), `msg="config reloaded"`)

	applied := rt.live.Load()
	require.NoError(t, os.WriteFile(path, []byte(reloadConfig("https://p.example", reloadBroken)), 0o600))
	err = rt.reload()
	var cerr *config.Error
	require.ErrorAs(t, err, &cerr)
	require.Same(t, applied, rt.live.Load(), "the running config stays")
	require.Contains(t, logs.String(), `msg="config reload refused; the running config stays"`)
	// {evnt_id} stands after `    url: "https://p.example/c?e=`.
	require.Contains(t, logs.String(), `:11:33: partner \"c\": url: unknown macro {evnt_id} (did you mean {event_id}?)`)

	require.NoError(t, os.Remove(path))
	require.Error(t, rt.reload())
	require.Same(t, applied, rt.live.Load())
}

// reloadChildEnv carries the CLI arguments of the child process that
// TestServe_ReloadOnSIGHUP starts from this test binary.
const reloadChildEnv = "POSTBACK_TEST_RELOAD_CHILD"

// TestServe_ReloadOnSIGHUP runs `postback serve` as a process of its own and
// sends it SIGHUP: a valid new file is applied, a broken one is refused
// with its problems logged and the running config keeps working.
func TestServe_ReloadOnSIGHUP(t *testing.T) {
	if args := os.Getenv(reloadChildEnv); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			panic(err)
		}
		os.Exit(run(argv, os.Stdout, os.Stderr))
	}
	t.Parallel()
	partner := stacktest.NewPartner(t)
	path := partnersFile(t, "postback.yaml", reloadConfig(partner.URL, ""))
	argv, _ := json.Marshal([]string{"postback", "-c", path, "--redis-url", redistest.DB(t),
		"--log-format", "json", "serve", "--listen", "127.0.0.1:0"})

	cmd := exec.Command(os.Args[0], "-test.run=^TestServe_ReloadOnSIGHUP$")
	cmd.Env = append(os.Environ(), reloadChildEnv+"="+string(argv))
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	logs := watchLogs(stderr)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("postback serve did not stop within 15s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("child logs:\n%s", logs.all())
		}
	})

	listening := logs.wait(t, func(m map[string]any) bool { return m["msg"] == "API listening" })
	api := "http://" + listening["addr"].(string)

	require.Equal(t, []string{"a"}, reloadPost(t, api, "evt-1"))

	require.NoError(t, os.WriteFile(path, []byte(reloadConfig(partner.URL, reloadPartnerC)), 0o600))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	logs.wait(t, func(m map[string]any) bool { return m["msg"] == "config reloaded" })
	require.Equal(t, []string{"a", "c"}, reloadPost(t, api, "evt-2"))

	require.NoError(t, os.WriteFile(path, []byte(reloadConfig(partner.URL, reloadBroken)), 0o600))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	refused := logs.wait(t, func(m map[string]any) bool { return m["level"] == "ERROR" })
	require.Equal(t, "config reload refused; the running config stays", refused["msg"])
	col := len(`    url: "`+partner.URL+"/c?e=") + 1
	require.Equal(t, fmt.Sprintf(`%s:11:%d: partner "c": url: unknown macro {evnt_id} (did you mean {event_id}?)`, path, col), refused["problems"])
	require.Equal(t, []string{"a", "c"}, reloadPost(t, api, "evt-3"))

	// Every accepted delivery reached the partner: the process kept working.
	partner.WaitRequests(t, 5, 10*time.Second)
}

// reloadPost posts an install and returns the partners it was routed to.
func reloadPost(t *testing.T, api, id string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, api+"/v1/events", strings.NewReader(`{"id":"`+id+`","name":"install"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+reloadKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Deliveries []struct{ Partner string } `json:"deliveries"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	var ids []string
	for _, d := range out.Deliveries {
		ids = append(ids, d.Partner)
	}
	return ids
}

// childLogs collects a child's JSON log lines as they arrive.
type childLogs struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   strings.Builder
	next  int // first line not yet matched by wait
	more  chan struct{}
}

func watchLogs(r io.Reader) *childLogs {
	l := &childLogs{more: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			_ = json.Unmarshal(sc.Bytes(), &m)
			l.mu.Lock()
			l.raw.WriteString(sc.Text() + "\n")
			if m != nil {
				l.lines = append(l.lines, m)
			}
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// wait returns the first new log line that matches, failing after 10s.
func (l *childLogs) wait(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		for ; l.next < len(l.lines); l.next++ {
			if m := l.lines[l.next]; match(m) {
				l.next++
				l.mu.Unlock()
				return m
			}
		}
		l.mu.Unlock()
		select {
		case <-l.more:
		case <-deadline:
			t.Fatalf("no matching log line within 10s")
		}
	}
}

func (l *childLogs) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// TestRuntime_ReloadRefusesWaitReplicasWhereItCannotWork: a reload that
// turns api.wait_replicas on where no WAIT can succeed (the embedded
// Redis, Redis Cluster) is refused as the same file would be at start,
// instead of answering every event 503 from then on.
func TestRuntime_ReloadRefusesWaitReplicasWhereItCannotWork(t *testing.T) {
	t.Parallel()
	withWait := strings.Replace(reloadConfig("https://p.example", ""), "api:\n", "api:\n  wait_replicas: 1\n", 1)
	for _, tc := range []struct {
		name string
		rt   func(t *testing.T) *runtime
		want string
	}{
		{"embedded", func(t *testing.T) *runtime {
			mini := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mini.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			return &runtime{mini: mini, rdb: rdb, api: true}
		}, "the embedded Redis has no replicas"},
		{"cluster", func(t *testing.T) *runtime {
			rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
			t.Cleanup(func() { _ = rdb.Close() })
			return &runtime{rdb: rdb, api: true}
		}, "not supported on Redis Cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := partnersFile(t, "postback.yaml", reloadConfig("https://p.example", ""))
			cfg, err := config.Load(path)
			require.NoError(t, err)
			var logs bytes.Buffer
			rt := tc.rt(t)
			rt.log, rt.live, rt.cfgPath = slog.New(slog.NewTextHandler(&logs, nil)), config.NewLive(cfg), path

			require.NoError(t, os.WriteFile(path, []byte(withWait), 0o600))
			require.ErrorContains(t, rt.reload(), tc.want)
			require.Same(t, cfg, rt.live.Load(), "the running config stays")
			require.Contains(t, logs.String(), `msg="config reload refused; the running config stays"`)
			require.Contains(t, logs.String(), tc.want)

			if rt.mini == nil {
				// A worker alone on Cluster never waits for replicas: it
				// takes the file, as it starts with it.
				rt.api = false
				require.NoError(t, rt.reload())
				require.Equal(t, 1, rt.live.Load().API.WaitReplicas)
				rt.api, rt.live = true, config.NewLive(cfg)
			}

			// Without the setting the same runtime reloads.
			require.NoError(t, os.WriteFile(path, []byte(reloadConfig("https://p.example", reloadPartnerC)), 0o600))
			require.NoError(t, rt.reload())
			require.Equal(t, []string{"a", "c"}, partnerIDs(rt.live.Load()))
		})
	}
}
