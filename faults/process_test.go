//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// apiKey is the bearer key of every API the suite starts.
const apiKey = "faults-key-0123456789abcdef"

// writeConfig writes a postback.yaml with one partner, "acme", whose URL
// is partnerURL with the event and delivery ids appended, and returns its
// path. retry is the partner's retry line; extra is more partners (YAML
// list items).
func writeConfig(t *testing.T, partnerURL, retry string, extra ...string) string {
	t.Helper()
	if retry == "" {
		retry = "{max_attempts: 100, max_age: 30m, initial_interval: 500ms, max_interval: 3s, multiplier: 2}"
	}
	yaml := fmt.Sprintf(`api:
  keys: [%q]
  dedup_window: 1h
delivery:
  timeout: 30s
  allow_private_networks: true
partners:
  - id: acme
    events: [purchase]
    match: attributed
    method: GET
    url: "%s/pb?e={event_id}&dlv={delivery_id}&click={click_id}&sum={revenue|default:0}"
    timeout: 30s
    retry: %s
%s`, apiKey, partnerURL, retry, strings.Join(extra, ""))
	path := filepath.Join(t.TempDir(), "postback.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// proc is a running postback process.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
	// URL is the API's base URL (api and serve).
	URL string
}

// startPostback runs `postback <command> args...` on redisURL with config
// and waits until it is ready: its API answers /healthz, or (worker) it
// logged "worker started".
func startPostback(t *testing.T, name, command, redisURL, config string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, logs: &syncBuffer{}, done: make(chan struct{})}
	full := []string{"--config", config, "--redis-url", redisURL, "--log-format", "json", "--log-level", "info", command}
	if command != "worker" {
		port := freePort(t)
		p.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		full = append(full, "--listen", "127.0.0.1:"+strconv.Itoa(port))
	}
	full = append(full, args...)
	p.cmd = exec.Command(bin, full...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			path := filepath.Join(os.TempDir(), fmt.Sprintf("faults-%s-%s.log", strings.ReplaceAll(t.Name(), "/", "_"), name))
			_ = os.WriteFile(path, []byte(p.logs.String()), 0o600)
			t.Logf("%s logs (last 10 lines; all in %s):\n%s", name, path, p.logs.tail(10))
		}
	})
	ready := func() bool {
		if p.URL == "" {
			return strings.Contains(p.logs.String(), "worker started")
		}
		resp, err := http.Get(p.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	deadline := time.Now().Add(20 * time.Second)
	for !ready() {
		select {
		case <-p.done:
			t.Fatalf("%s exited at start (%v):\n%s", name, p.err, p.logs.tail(20))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 20s:\n%s", name, p.logs.tail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// Signal sends sig to the process.
func (p *proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// Kill kills the process (kill -9) and waits for it to go.
func (p *proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Wait waits up to timeout for the process to exit and returns its error.
func (p *proc) Wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.t.Fatalf("%s still running after %v", p.name, timeout)
		return nil
	}
}

// countLog counts the JSON log lines whose msg is msg.
func (p *proc) countLog(msg string) int { return p.countLines(`"msg":"` + msg + `"`) }

// countLogPrefix counts the JSON log lines whose msg starts with prefix.
func (p *proc) countLogPrefix(prefix string) int { return p.countLines(`"msg":"` + prefix) }

// countLines counts the log lines that contain needle.
func (p *proc) countLines(needle string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), needle) {
			n++
		}
	}
	return n
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(s.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls cond every 50ms until it holds, failing the test with
// what() after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("not within %v: %s", timeout, what())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
