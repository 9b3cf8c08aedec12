package netguard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wireRequest is a request as it arrived, byte for byte.
type wireRequest struct {
	line   string   // request line
	header []string // header lines, as sent
	body   string
}

// rawServer accepts connections on loopback and hands each request, read
// as raw lines, to serve with the connection; serve answers (or not) and
// says whether to keep reading the connection.
func rawServer(t *testing.T, serve func(conn int, c net.Conn, r wireRequest) bool) (url string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(conns.Add(1))
			go func() {
				defer c.Close()
				tp := textproto.NewReader(bufio.NewReader(c))
				for {
					var r wireRequest
					if r.line, err = tp.ReadLine(); err != nil {
						return
					}
					length := 0
					for {
						h, err := tp.ReadLine()
						if err != nil {
							return
						}
						if h == "" {
							break
						}
						r.header = append(r.header, h)
						if v, ok := strings.CutPrefix(strings.ToLower(h), "content-length: "); ok {
							length, _ = strconv.Atoi(v)
						}
					}
					body := make([]byte, length)
					if _, err := io.ReadFull(tp.R, body); err != nil {
						return
					}
					r.body = string(body)
					if !serve(n, c, r) {
						return
					}
				}
			}()
		}
	}()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	return "http://" + partnerHost + ":" + port, conns
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// send builds the request as delivery.Sender does and sends it with Do.
func send(ctx context.Context, t *testing.T, c *Client, method, url string, h http.Header, body []byte) (*Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header, req.ContentLength = h, int64(len(body))
	if req.Header == nil {
		req.Header = http.Header{}
	}
	return c.Do(ctx, req)
}

// The URL leaves exactly as rendered (escapes, '+', an encoded slash), the
// header names as the template wrote them, and a body with its length.
func TestClient_Do_asRendered(t *testing.T) {
	t.Parallel()
	got := make(chan wireRequest, 1)
	url, _ := rawServer(t, func(_ int, c net.Conn, r wireRequest) bool {
		got <- r
		_, _ = io.WriteString(c, okAnswer)
		return true
	})
	c := newClient(t, Config{AllowPrivate: true, Resolver: rebindingResolver, UserAgent: "postback/9"})

	const target = "/a%2Fb/./c//d?x=1+2&y=%20%C3%A9&z=a%2Bb&empty=&dup=1&dup=2"
	resp, err := send(context.Background(), t, c, http.MethodPost, url+target,
		http.Header{"x-partner-Token": {"t0k"}, "Content-Type": {"application/json"}}, []byte(`{"event":"install"}`))
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "ok", string(resp.Body))

	r := <-got
	require.Equal(t, "POST "+target+" HTTP/1.1", r.line)
	require.Contains(t, r.header, "x-partner-Token: t0k", "header names keep their case")
	require.Contains(t, r.header, "Content-Type: application/json")
	require.Contains(t, r.header, "User-Agent: postback/9")
	require.Contains(t, r.header, "Content-Length: 19")
	require.Equal(t, `{"event":"install"}`, r.body)
}

// A partner that closes a keep-alive connection as the next request
// arrives on it (its idle timeout, racing the send): the request goes again
// once, on a new connection, and succeeds.
func TestClient_Do_staleKeepAliveSentAgain(t *testing.T) {
	t.Parallel()
	var answered atomic.Int64
	url, conns := rawServer(t, func(conn int, c net.Conn, r wireRequest) bool {
		if conn == 1 && answered.Load() == 1 {
			return false // the second request on the first connection: closed unanswered
		}
		answered.Add(1)
		_, _ = io.WriteString(c, okAnswer)
		return true
	})
	c := newClient(t, Config{AllowPrivate: true, Resolver: rebindingResolver})

	for range 2 {
		resp, err := send(context.Background(), t, c, http.MethodGet, url+"/pb", nil, nil)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
	}
	require.Equal(t, int64(2), answered.Load())
	require.Equal(t, int64(2), conns.Load())
}

// A partner that closes every connection without answering fails the
// attempt, with an error that names no URL.
func TestClient_Do_closedWithoutAnswer(t *testing.T) {
	t.Parallel()
	url, conns := rawServer(t, func(int, net.Conn, wireRequest) bool { return false })
	c := newClient(t, Config{AllowPrivate: true, Resolver: rebindingResolver})

	resp, err := send(context.Background(), t, c, http.MethodGet, url+"/pb?token=s3cret", nil, nil)
	require.Nil(t, resp)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
	require.LessOrEqual(t, conns.Load(), int64(2), "sent at most twice")
}

// An answer whose head is not HTTP is an error, not a status.
func TestClient_Do_garbageAnswer(t *testing.T) {
	t.Parallel()
	url, _ := rawServer(t, func(_ int, c net.Conn, _ wireRequest) bool {
		_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
		return false
	})
	c := newClient(t, Config{AllowPrivate: true, Resolver: rebindingResolver})

	resp, err := send(context.Background(), t, c, http.MethodGet, url+"/pb", nil, nil)
	require.Nil(t, resp)
	require.Error(t, err)
}

// A context already done sends nothing.
func TestClient_Do_contextDone(t *testing.T) {
	t.Parallel()
	url, conns := rawServer(t, func(_ int, c net.Conn, _ wireRequest) bool {
		_, _ = io.WriteString(c, okAnswer)
		return true
	})
	c := newClient(t, Config{AllowPrivate: true, Resolver: rebindingResolver})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := send(ctx, t, c, http.MethodGet, url+"/pb", nil, nil)
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = send(ctx, t, c, http.MethodGet, url+"/pb", nil, nil)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	require.Zero(t, conns.Load())
}
