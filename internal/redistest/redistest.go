// Package redistest runs a real redis-server for tests.
//
// A test package calls Main from its TestMain: one redis-server is started on
// a free loopback port for the whole package and stopped when the tests end.
// Tests then call DB to borrow one of the server's 16 logical databases,
// flushed and theirs alone until the test ends, so parallel tests do not see
// each other's keys. Tests that must stop or pause Redis start their own
// server with Start.
//
// When no redis-server is on PATH the harness falls back to an in-process
// miniredis and logs that it did: the suite still runs, with less fidelity.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Server is a Redis server started for tests.
type Server struct {
	addr string
	cmd  *exec.Cmd
	mini *miniredis.Miniredis
	dir  string
	dbs  chan int
}

// Options tune a server started with Start.
type Options struct {
	// Args are extra redis-server arguments, for example
	// []string{"--appendonly", "yes"}. Ignored for miniredis.
	Args []string
	// Port to listen on; 0 picks a free one. Set it to restart a stopped
	// server on the same address.
	Port int
	// Dir is the working directory (AOF and RDB files); default a new
	// temporary directory.
	Dir string
}

var shared *Server

// Main starts the package's shared server, runs the tests and stops it.
func Main(m *testing.M) {
	s, err := Start(Options{})
	if err != nil {
		log.Fatalf("redistest: %v", err)
	}
	shared = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// Real reports whether redis-server is on PATH (so tests that need a
// separate process, such as stopping Redis mid-test, can run).
func Real() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// Start starts a server. It uses redis-server when it is on PATH and
// miniredis otherwise.
func Start(o Options) (*Server, error) {
	s := &Server{dbs: make(chan int, 16)}
	for i := range 16 {
		s.dbs <- i
	}
	if !Real() {
		log.Printf("redistest: no redis-server on PATH; falling back to the embedded miniredis")
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return nil, err
		}
		s.mini, s.addr = mr, mr.Addr()
		return s, nil
	}
	s.dir = o.Dir
	if s.dir == "" {
		d, err := os.MkdirTemp("", "redistest-")
		if err != nil {
			return nil, err
		}
		s.dir = d
	}
	port := o.Port
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := s.launch(port, o.Args); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) launch(port int, extra []string) error {
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--protected-mode", "no",
	}
	args = append(args, extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = s.dir
	logf, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", port)))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.cmd = cmd
	go func() { _ = cmd.Wait(); _ = logf.Close() }()
	rc := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rc.Ping(context.Background()).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("redis-server on %s did not answer: %w (log: %s)", s.addr, err, tail(logf.Name()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// URL is a redis:// URL for database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.addr, db) }

// Embedded reports whether this is the miniredis fallback.
func (s *Server) Embedded() bool { return s.mini != nil }

// Signal sends sig to the redis-server process (SIGSTOP to pause it,
// SIGCONT to resume, SIGKILL to crash it).
func (s *Server) Signal(sig os.Signal) error {
	if s.cmd == nil {
		return errors.New("redistest: no redis-server process (embedded fallback)")
	}
	return s.cmd.Process.Signal(sig)
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	if s.mini != nil {
		s.mini.Close()
		return
	}
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
	_ = os.RemoveAll(s.dir)
}

// DB borrows a flushed logical database of the package's shared server for
// the test's lifetime and returns its redis:// URL.
func DB(t testing.TB) string {
	t.Helper()
	if shared == nil {
		t.Fatal("redistest: call redistest.Main from TestMain first")
	}
	return shared.DB(t)
}

// DB borrows a flushed logical database of s for the test's lifetime.
func (s *Server) DB(t testing.TB) string {
	t.Helper()
	var db int
	select {
	case db = <-s.dbs:
	case <-time.After(2 * time.Minute):
		t.Fatal("redistest: no free database after 2m")
	}
	url := s.URL(db)
	flush := func() {
		rc := redis.NewClient(&redis.Options{Addr: s.addr, DB: db})
		defer rc.Close()
		if err := rc.FlushDB(context.Background()).Err(); err != nil {
			t.Logf("redistest: flush db %d: %v", db, err)
		}
	}
	flush()
	t.Cleanup(func() { flush(); s.dbs <- db })
	return url
}

// Own starts a server for one test alone and stops it at the end.
func Own(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		last = sc.Text()
	}
	return last
}
