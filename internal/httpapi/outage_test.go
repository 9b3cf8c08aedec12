package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/httpapi"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

// at returns the records of level, each as its message and attributes.
func (r *recorder) at(level slog.Level) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.records {
		if rec.Level != level {
			continue
		}
		m := map[string]string{"msg": rec.Message}
		rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		out = append(out, m)
	}
	return out
}

// clock is a time the test moves.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// api is an API of the twoPartnersYAML config on redisURL, built by the
// test, so that it can set Config's Logger and Now.
type api struct {
	url string
	log *recorder
	now *clock
}

func newAPI(t *testing.T, redisURL string, netHTTP bool) *api {
	t.Helper()
	yaml := strings.NewReplacer("ACME", "http://127.0.0.1:9", "ALL", "http://127.0.0.1:9", "${api_key}", stacktest.APIKey).Replace(twoPartnersYAML)
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	rdb, err := store.OpenRedis(redisURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	live := config.NewLive(cfg)
	client, err := intake.NewClient(intake.ClientConfig{Redis: rdb, Config: live})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	a := &api{log: &recorder{}, now: newClock()}
	srv, err := httpapi.New(httpapi.Config{Client: client, Config: live, Redis: rdb, Logger: slog.New(a.log), Now: a.now.now})
	require.NoError(t, err)
	if netHTTP {
		hs := httptest.NewServer(srv)
		t.Cleanup(hs.Close)
		a.url = hs.URL
		return a
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	a.url = "http://" + ln.Addr().String()
	return a
}

// post sends body to path with the key; it returns the status and the
// error message of the answer, if any.
func (a *api) post(t *testing.T, path, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+stacktest.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Error struct{ Code, Message string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Error.Code, out.Error.Message
}

// TestPostEvent_UnavailableSaysTheOutcomeIsUnknown: a 503 of intake does
// not claim the events were not stored (a write Redis did not confirm may
// have happened); it says to repeat them with the same ids.
func TestPostEvent_UnavailableSaysTheOutcomeIsUnknown(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	onBoth(t, func(t *testing.T, netHTTP bool) {
		srv := redistest.Own(t, redistest.Options{})
		a := newAPI(t, srv.URL(0), netHTTP)
		srv.Close()
		for _, tc := range []struct{ path, body, same string }{
			{"/v1/events", `{"id":"u-1","name":"install"}`, "same id"},
			{"/v1/events/batch", `[{"id":"u-2","name":"install"},{"id":"u-3","name":"install"}]`, "same ids"},
		} {
			status, code, msg := a.post(t, tc.path, tc.body)
			require.Equal(t, http.StatusServiceUnavailable, status, msg)
			require.Equal(t, "unavailable", code)
			require.Contains(t, msg, "may have been stored")
			require.Contains(t, msg, tc.same)
			require.Contains(t, msg, "duplicate")
			require.NotContains(t, msg, "not stored")
		}
	})
}

// TestPostEvent_OutageLogsSummarised: while Redis is down, intake logs the
// first failure at once, then one line an interval with the count and the
// last error, not a line a request; and one line when writes work again.
func TestPostEvent_OutageLogsSummarised(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	onBoth(t, func(t *testing.T, netHTTP bool) {
		srv := redistest.Own(t, redistest.Options{})
		a := newAPI(t, srv.URL(0), netHTTP)
		status, _, msg := a.post(t, "/v1/events", `{"id":"before","name":"install"}`)
		require.Equal(t, http.StatusAccepted, status, msg)
		srv.Close()

		var wg sync.WaitGroup
		for i := range 20 {
			path, body := "/v1/events", fmt.Sprintf(`{"id":"down-%d","name":"install"}`, i)
			if i%2 == 1 {
				path, body = "/v1/events/batch", "["+body+"]"
			}
			wg.Go(func() {
				status, _, msg := a.post(t, path, body)
				assert.Equal(t, http.StatusServiceUnavailable, status, msg)
			})
		}
		wg.Wait()
		errs := a.log.at(slog.LevelError)
		require.Equal(t, 1, len(errs), "ERROR lines: want the first failure alone")
		require.NotEmpty(t, errs[0]["err"])

		a.now.advance(11 * time.Second)
		status, _, msg = a.post(t, "/v1/events", `{"id":"later","name":"install"}`)
		require.Equal(t, http.StatusServiceUnavailable, status, msg)
		errs = a.log.at(slog.LevelError)
		require.Equal(t, 2, len(errs), "ERROR lines: want one more for the interval")
		require.Equal(t, "20", errs[1]["failures"], "the failures since the first line: %v", errs[1])
		require.NotEmpty(t, errs[1]["err"])

		// The same server again, on the same port.
		port := srv.Addr()[strings.LastIndexByte(srv.Addr(), ':')+1:]
		var p int
		_, err := fmt.Sscan(port, &p)
		require.NoError(t, err)
		redistest.Own(t, redistest.Options{Port: p})
		require.Eventually(t, func() bool {
			status, _, _ := a.post(t, "/v1/events", `{"id":"after","name":"install"}`)
			return status == http.StatusAccepted
		}, 10*time.Second, 50*time.Millisecond)
		require.Len(t, a.log.at(slog.LevelError), 2, "no line for a success")
		infos := a.log.at(slog.LevelInfo)
		require.NotEmpty(t, infos, "a line when writes work again")
		require.Contains(t, infos[len(infos)-1]["msg"], "again")
	})
}
