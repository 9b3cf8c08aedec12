package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadClient(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		require.Equal(t, "Bearer k", r.Header.Get("Authorization"))
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		switch r.URL.Path {
		case "/big": // more than net/http buffers: sent chunked
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, strings.Repeat("x", 10000)+string(body))
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(body)
		default:
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write(body)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	lc, err := newLoadClient(srv.URL, "k", 5*time.Second, 4)
	require.NoError(t, err)
	defer lc.close()
	ctx := context.Background()
	for range 3 {
		code, answer, err := lc.post(ctx, "/v1/events", []byte(`{"id":"a"}`))
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code)
		require.Equal(t, `{"id":"a"}`, string(answer))
	}
	require.EqualValues(t, 1, conns.Load(), "one kept-alive connection")

	code, answer, err := lc.post(ctx, "/big", []byte("!"))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, strings.Repeat("x", 10000)+"!", string(answer))

	code, answer, err = lc.post(ctx, "/close", []byte("bye"))
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "bye", string(answer))
	_, _, err = lc.post(ctx, "/v1/events", nil)
	require.NoError(t, err)
	require.EqualValues(t, 2, conns.Load(), "a new connection after Connection: close")

	_, err = newLoadClient("ftp://x", "k", time.Second, 1)
	require.ErrorContains(t, err, "scheme")
}

func TestLoadClient_malformedAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, "SMTP ready\r\n\r\n")
	}()
	lc, err := newLoadClient("http://"+ln.Addr().String(), "k", 5*time.Second, 1)
	require.NoError(t, err)
	_, _, err = lc.post(context.Background(), "/v1/events", []byte("{}"))
	require.ErrorIs(t, err, errBadHTTP)
}

func TestPartner(t *testing.T) {
	p, err := startPartner("127.0.0.1:0")
	require.NoError(t, err)
	defer p.close()
	base := "http://" + p.addr

	client := &http.Client{Timeout: 5 * time.Second}
	for _, id := range []string{"e1", "e1", "e 2"} {
		resp, err := client.Get(base + "/pb?x=1&e=" + strings.ReplaceAll(id, " ", "%20") + "&y=2")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "ok", string(b))
	}
	resp, err := client.Post(base+"/pb?e=e3", "application/json", strings.NewReader(`{"a":1}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.EqualValues(t, 4, p.received.Load())
	require.EqualValues(t, 3, p.unique())
	at, ok := p.firstReceipt("e 2")
	require.True(t, ok)
	require.WithinDuration(t, time.Now(), at, time.Minute)

	// What it does not understand gets a 400, not a silent 200.
	c, err := net.Dial("tcp", p.addr)
	require.NoError(t, err)
	defer c.Close()
	_, _ = io.WriteString(c, "POST /pb?e=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1 400 Bad Request\r\n", line)
	require.EqualValues(t, 4, p.received.Load())

	p.reset()
	require.Zero(t, p.unique())
}

// TestPartner_requestInPieces: a request line that arrives before its
// headers still counts under its own event id (the reader's buffer is
// refilled between them).
func TestPartner_requestInPieces(t *testing.T) {
	p, err := startPartner("127.0.0.1:0")
	require.NoError(t, err)
	defer p.close()
	c, err := net.Dial("tcp", p.addr)
	require.NoError(t, err)
	defer c.Close()
	_, _ = io.WriteString(c, "POST /pb?e=split-1&x=y HTTP/1.1\r\n")
	time.Sleep(50 * time.Millisecond)
	_, _ = io.WriteString(c, "Host: x\r\nContent-Length: 5\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	_, _ = io.WriteString(c, "hello")
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1 200 OK\r\n", line)
	_, ok := p.firstReceipt("split-1")
	require.True(t, ok, "counted under its id")
	require.EqualValues(t, 1, p.unique())
}

// TestLoadClient_pathAndStaleConnection: an API URL with a path prefixes
// every request; a kept-alive connection the server dropped while idle is
// replaced and the request sent again; 204 has no body.
func TestLoadClient_pathAndStaleConnection(t *testing.T) {
	var paths []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	lc, err := newLoadClient(srv.URL+"/gw/", "k", 5*time.Second, 2)
	require.NoError(t, err)
	defer lc.close()
	ctx := context.Background()
	code, answer, err := lc.post(ctx, "/v1/events", []byte("{}"))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, code)
	require.Empty(t, answer)

	srv.CloseClientConnections() // the idle connection dies
	code, _, err = lc.post(ctx, "/v1/events/batch", []byte("{}"))
	require.NoError(t, err, "resent on a new connection")
	require.Equal(t, http.StatusNoContent, code)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"/gw/v1/events", "/gw/v1/events/batch"}, paths)
}
