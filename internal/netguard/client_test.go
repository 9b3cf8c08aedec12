package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// partnerHost is the name the test resolver rebinds to the loopback server.
const partnerHost = "partner.example"

type testBundle struct {
	srv   *httptest.Server
	hits  *atomic.Int64 // requests the server received
	conns *atomic.Int64 // connections the server accepted
	url   string        // the server's URL under partnerHost
}

// setup starts a loopback partner serving handler, counting connections and
// requests.
func setup(t *testing.T, handler http.HandlerFunc) *testBundle {
	t.Helper()
	hits, conns := new(atomic.Int64), new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		handler(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	return &testBundle{srv: srv, hits: hits, conns: conns, url: "http://" + partnerHost + ":" + port}
}

// rebindingResolver answers partnerHost with 127.0.0.1 in the IPv4-mapped
// form net.Resolver uses, as a rebinding DNS server would after validation.
var rebindingResolver = ResolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
	if host == partnerHost {
		return []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
})

// newClient builds a Client and closes its idle connections at cleanup, so
// goleak finds no connection goroutines.
func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Resolver == nil {
		cfg.Resolver = rebindingResolver // never let a test reach real DNS
	}
	c := New(cfg)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func get(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	return req
}

func TestClient_Do_rebindingBlocked(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, Config{})

	resp, err := c.Do(context.Background(), get(t, b.url+"/c?token=s3cret"))
	require.Nil(t, resp)
	var be *BlockedError
	require.ErrorAs(t, err, &be)
	require.Equal(t, netip.MustParseAddr("127.0.0.1"), be.Addr)
	require.Equal(t, partnerHost, be.Host)
	require.Equal(t, "loopback", be.Reason)
	require.NotContains(t, err.Error(), "s3cret", "errors must not repeat the URL")
	require.Zero(t, b.conns.Load(), "the partner is never even connected to")
}

func TestClient_Do_literalBlocked(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, Config{})

	_, err := c.Do(context.Background(), get(t, b.srv.URL))
	require.ErrorAs(t, err, new(*BlockedError))
	require.Zero(t, b.conns.Load())
}

func TestClient_Do_controlHookWired(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {})

	// Bypass the pre-dial check and go straight to the net.Dialer: the
	// Control hook alone must refuse before connect(2).
	d := newDialer(Config{}.WithDefaults())
	conn, err := d.net.DialContext(context.Background(), "tcp", b.srv.Listener.Addr().String())
	require.Nil(t, conn)
	require.ErrorAs(t, err, new(*BlockedError))

	// A connection the listener had accepted would be counted before the
	// next one, which is made and served normally.
	c := newClient(t, Config{AllowPrivate: true})
	_, err = c.Do(context.Background(), get(t, b.srv.URL))
	require.NoError(t, err)
	require.Equal(t, int64(1), b.conns.Load())
}

func TestClient_Do_allowPrivate(t *testing.T) {
	t.Parallel()
	var gotUA atomic.Value
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		gotUA.Store(r.UserAgent())
		w.Header().Set("X-Partner", "acme")
		_, _ = io.WriteString(w, "ok")
	})
	c := newClient(t, Config{AllowPrivate: true, UserAgent: "postback/1.2.3"})

	req := get(t, b.url+"/c")
	resp, err := c.Do(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ok", string(resp.Body))
	require.False(t, resp.Truncated)
	require.Equal(t, "acme", resp.Header.Get("X-Partner"))
	require.Equal(t, b.srv.Listener.Addr().String(), resp.RemoteAddr)
	require.Positive(t, resp.Duration)
	require.Equal(t, "postback/1.2.3", gotUA.Load())
	require.Empty(t, req.Header.Get("User-Agent"), "the caller's request is not modified")
	require.Equal(t, int64(1), b.hits.Load())

	// A User-Agent set by the partner's template wins.
	req = get(t, b.url+"/c")
	req.Header.Set("User-Agent", "acme-sdk")
	_, err = c.Do(context.Background(), req)
	require.NoError(t, err)
	require.Equal(t, "acme-sdk", gotUA.Load())
}

func TestClient_Do_redirectNotFollowed(t *testing.T) {
	t.Parallel()
	target := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.srv.URL+"/elsewhere", http.StatusFound)
	})
	c := newClient(t, Config{AllowPrivate: true})

	resp, err := c.Do(context.Background(), get(t, b.srv.URL))
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, target.srv.URL+"/elsewhere", resp.Header.Get("Location"))
	require.Zero(t, target.hits.Load())
}

func TestClient_Do_truncated(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	for name, tt := range map[string]struct {
		size          int
		wantTruncated bool
	}{
		"under":   {size: limit - 1},
		"exactly": {size: limit},
		"over":    {size: 4 * limit, wantTruncated: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, strings.Repeat("x", tt.size))
			})
			c := newClient(t, Config{AllowPrivate: true}) // default MaxResponseBytes

			resp, err := c.Do(context.Background(), get(t, b.srv.URL))
			require.NoError(t, err)
			require.Equal(t, tt.wantTruncated, resp.Truncated)
			require.Len(t, resp.Body, min(tt.size, limit))
		})
	}
}

// requireTimeout asserts err is a timeout by both tests callers may use.
func requireTimeout(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var netErr interface{ Timeout() bool }
	require.True(t, errors.As(err, &netErr) && netErr.Timeout(), "%v", err)
}

func TestClient_Do_slowloris(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				_, _ = w.Write([]byte("x"))
				w.(http.Flusher).Flush()
			}
		}
	})
	c := newClient(t, Config{AllowPrivate: true, Timeout: 350 * time.Millisecond})

	resp, err := c.Do(context.Background(), get(t, b.srv.URL))
	requireTimeout(t, err)
	require.NotNil(t, resp, "the status that arrived is kept")
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestClient_Do_noAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	c := newClient(t, Config{AllowPrivate: true, Timeout: 200 * time.Millisecond})

	resp, err := c.Do(context.Background(), get(t, b.srv.URL))
	require.Nil(t, resp)
	requireTimeout(t, err)
}

func TestClient_Do_callerDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	c := newClient(t, Config{AllowPrivate: true}) // 10s default; the ctx is shorter

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, get(t, b.srv.URL))
	requireTimeout(t, err)
}

func TestClient_Do_resolverError(t *testing.T) {
	t.Parallel()
	c := newClient(t, Config{})

	_, err := c.Do(context.Background(), get(t, "http://unknown.example/"))
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	require.NotErrorAs(t, err, new(*BlockedError))
}

func TestClient_Do_everyAnswerBlocked(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {})
	// Every answer is blocked: nothing is dialled and the first refusal is
	// reported.
	c := newClient(t, Config{Resolver: ResolverFunc(func(context.Context, string, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("127.0.0.1")}, nil
	})})

	_, err := c.Do(context.Background(), get(t, b.url))
	var be *BlockedError
	require.ErrorAs(t, err, &be)
	require.Equal(t, netip.MustParseAddr("169.254.169.254"), be.Addr)
	require.Zero(t, b.conns.Load())
}

func TestClient_Do_badScheme(t *testing.T) {
	t.Parallel()
	c := newClient(t, Config{AllowPrivate: true})

	_, err := c.Do(context.Background(), get(t, "ftp://partner.example/"))
	require.ErrorIs(t, err, ErrScheme)
}

func TestConfig_WithDefaults(t *testing.T) {
	t.Parallel()

	got := Config{Timeout: -time.Second}.WithDefaults()
	require.Equal(t, 10*time.Second, got.Timeout)
	require.Equal(t, 5*time.Second, got.DialTimeout)
	require.Equal(t, 5*time.Second, got.TLSHandshakeTimeout)
	require.Equal(t, int64(64<<10), got.MaxResponseBytes)
	require.Equal(t, int64(64<<10), got.MaxResponseHeaderBytes)
	require.Equal(t, 64, got.MaxIdleConnsPerHost)
	require.Equal(t, Resolver(net.DefaultResolver), got.Resolver)
	require.Equal(t, "postback/dev", got.UserAgent)
	require.False(t, got.AllowPrivate)

	set := Config{Timeout: time.Second, MaxResponseBytes: 10, MaxResponseHeaderBytes: 20, UserAgent: "x"}.WithDefaults()
	require.Equal(t, time.Second, set.Timeout)
	require.Equal(t, int64(10), set.MaxResponseBytes)
	require.Equal(t, int64(20), set.MaxResponseHeaderBytes)
	require.Equal(t, "x", set.UserAgent)
}

func TestNew_transport(t *testing.T) {
	t.Parallel()
	c := newClient(t, Config{})

	tr, ok := c.http.Transport.(*http.Transport)
	require.True(t, ok)
	require.Nil(t, tr.Proxy, "a proxy would hide the real target from the guard")
	require.NotNil(t, tr.DialContext)
	require.Equal(t, 64, tr.MaxIdleConnsPerHost)
	require.Equal(t, 5*time.Second, tr.TLSHandshakeTimeout)
	require.Equal(t, int64(64<<10), tr.MaxResponseHeaderBytes, "net/http's default is 10 MiB")
	require.NotNil(t, c.http.CheckRedirect)
}
