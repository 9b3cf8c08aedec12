// Package stacktest assembles a whole postback for integration tests: a
// real Redis (from redistest), the config, the enqueue Client, a Worker and
// the HTTP API as `postback api` serves it (httpapi.Server.Serve), or on
// net/http (Options.NetHTTP). Partners are real httptest servers
// too (Partner records what each receives).
package stacktest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/httpapi"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// APIKey is the bearer key of every stack's API.
const APIKey = "test-key-0123456789abcdef"

// Stack is one running postback.
type Stack struct {
	// RedisURL is the Redis the stack runs on: another stack on it
	// (Options.RedisURL) is another process of the same deployment.
	RedisURL string
	Redis    redis.UniversalClient
	Store    *store.Store
	Live     *config.Live
	env      map[string]string
	Client   *intake.Client
	Worker   *delivery.Worker
	API      API
	logs     *lockedWriter
}

// Options tune New.
type Options struct {
	// RedisURL overrides the package's shared test Redis.
	RedisURL string
	// NoWorker leaves the worker out (to inspect queued tasks).
	NoWorker bool
	// Env resolves ${env:NAME} in the config; default: none set.
	Env map[string]string
	// NetHTTP serves the API on net/http (httpapi.Server as an
	// http.Handler, as a Go program embeds it) instead of Serve.
	NetHTTP bool
	// Concurrency is the worker's; default 20.
	Concurrency int
	// Tracer traces the stack's intake and worker; default none.
	Tracer *tracing.Tracer
	// Isolation tunes the worker's circuit breakers and the like; default
	// the worker's defaults.
	Isolation delivery.GateConfig
	// NoGroupCommit stores each Enqueue call's event on its own (see
	// intake.ClientConfig).
	NoGroupCommit bool
}

// API is a stack's running HTTP API.
type API struct {
	URL string // http://127.0.0.1:port
}

// Transports are the two ways the API is served, for tests that run on
// both: Serve (fasthttp, what `postback api` runs) and net/http.
var Transports = []struct {
	Name    string
	NetHTTP bool
}{{"serve", false}, {"net_http", true}}

// New starts a stack on yamlConfig. "${api_key}" in it is replaced by
// APIKey; the config should set delivery.allow_private_networks to reach
// httptest partners.
func New(t testing.TB, yamlConfig string, o Options) *Stack {
	t.Helper()
	url := o.RedisURL
	if url == "" {
		url = redistest.DB(t)
	}
	rdb, err := store.OpenRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := parse(t, yamlConfig, o.Env)
	s := &Stack{RedisURL: url, env: o.Env, Redis: rdb, Store: store.NewSharded(rdb, cfg.Redis.Served()), Live: config.NewLive(cfg), logs: &lockedWriter{}}
	logger := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.Client, err = intake.NewClient(intake.ClientConfig{Redis: rdb, Config: s.Live, Tracer: o.Tracer, NoGroupCommit: o.NoGroupCommit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Client.Close() })
	if !o.NoWorker {
		s.Worker, err = delivery.NewWorker(delivery.WorkerConfig{
			Redis: rdb, Config: s.Live, Concurrency: cmp.Or(o.Concurrency, 20), Logger: logger,
			PollInterval: 10 * time.Millisecond, ScheduleInterval: 200 * time.Millisecond,
			ShutdownTimeout: 5 * time.Second, Tracer: o.Tracer, Isolation: o.Isolation,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Worker.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Worker.Shutdown)
	}
	api, err := httpapi.New(httpapi.Config{Client: s.Client, Config: s.Live, Redis: rdb, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if o.NetHTTP {
		srv := httptest.NewServer(api)
		t.Cleanup(srv.Close)
		s.API.URL = srv.URL
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- api.Serve(ln) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := api.Shutdown(ctx); err != nil {
				t.Errorf("API shutdown: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("API Serve: %v", err)
			}
		})
		s.API.URL = "http://" + ln.Addr().String()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postback logs:\n%s", s.Logs())
		}
	})
	return s
}

// parse parses a test config, ${api_key} standing for APIKey.
func parse(t testing.TB, yamlConfig string, env map[string]string) *config.Config {
	t.Helper()
	yamlConfig = strings.ReplaceAll(yamlConfig, "${api_key}", APIKey)
	cfg, err := config.Parse("test.yaml", []byte(yamlConfig), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// Parse parses yamlConfig as New does, for a reload: s.Live.Store(it).
func (s *Stack) Parse(t testing.TB, yamlConfig string) *config.Config {
	t.Helper()
	return parse(t, yamlConfig, s.env)
}

// Post sends body to the API path with the API key and returns the status
// and the decoded JSON answer.
func (s *Stack) Post(t testing.TB, path, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.API.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+APIKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return s.do(t, req)
}

// Get fetches an API path with the API key.
func (s *Stack) Get(t testing.TB, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.API.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+APIKey)
	return s.do(t, req)
}

func (s *Stack) do(t testing.TB, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, b)
		}
	}
	return resp.StatusCode, out
}

// WaitStatus waits until delivery id's record has status, or fails after
// timeout.
func (s *Stack) WaitStatus(t testing.TB, id string, status retry.Status, timeout time.Duration) *store.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rec, _, err := s.Store.GetAny(context.Background(), id)
		if err == nil && rec.Status == status {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: want status %s within %v, have %+v (err %v)", id, status, timeout, rec, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// QueueSizes returns the number of tasks in each state of the delivery
// queues (pending, active, scheduled, retry, archived), summed.
func (s *Stack) QueueSizes(t testing.TB) (pending, active, scheduled, retry, archived int) {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(s.Redis)
	for _, q := range wire.Queues(s.Store.Shards()) {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			continue // a queue that never had a task does not exist yet
		}
		pending += info.Pending
		active += info.Active
		scheduled += info.Scheduled
		retry += info.Retry
		archived += info.Archived
	}
	return
}

// Partner is a real HTTP partner that records what it receives and answers
// with Respond (default 200 "ok").
type Partner struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Received
	// Respond, when set, writes the answer to request n (1-based).
	Respond func(n int, w http.ResponseWriter, r *http.Request)
}

// Received is one request a Partner got.
type Received struct {
	Method string
	URL    string // request URI
	Header http.Header
	Body   string
	At     time.Time
}

// NewPartner starts a partner.
func NewPartner(t testing.TB) *Partner {
	p := &Partner{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.requests = append(p.requests, Received{Method: r.Method, URL: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(b), At: time.Now()})
		n := len(p.requests)
		respond := p.Respond
		p.mu.Unlock()
		if respond != nil {
			respond(n, w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(p.Close)
	return p
}

// Requests returns what the partner received so far.
func (p *Partner) Requests() []Received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Received(nil), p.requests...)
}

// WaitRequests waits until the partner received at least n requests.
func (p *Partner) WaitRequests(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := p.Requests()
		if len(r) >= n {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("partner: want %d requests within %v, got %d", n, timeout, len(r))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Logs returns what the stack logged so far.
func (s *Stack) Logs() string {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	return s.logs.buf.String()
}

type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

// Config parses a postback.yaml for a test, with no environment
// (${api_key} stands for APIKey).
func Config(t testing.TB, yamlConfig string) *config.Config {
	t.Helper()
	return parse(t, yamlConfig, nil)
}
