package httpapi_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/stacktest"
)

// announcedMiB is a Content-Length of 1 MiB, the default api.max_body_bytes.
const announcedMiB = 1 << 20

// TestAPI_MemoryFollowsBytesReceived opens connections that announce a
// body of 1 MiB and send a little of it, without a key and with one: the
// heap grows with the bytes sent, not with the bytes announced. It does not
// run in parallel, so that the heap is this test's alone.
func TestAPI_MemoryFollowsBytesReceived(t *testing.T) {
	const conns = 200
	// More than fasthttp reads before calling its handler (8 KiB), far
	// less than announced.
	sent := strings.Repeat(" ", 9<<10)
	for _, tr := range stacktest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			s := stacktest.New(t, strings.ReplaceAll(configYAML, "PARTNER", "http://127.0.0.1:9"), stacktest.Options{NoWorker: true, NetHTTP: tr.NetHTTP})
			for _, tc := range []struct{ name, head string }{
				{"intake without a key", "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"},
				{"other route without a key", "POST /v1/deliveries/x HTTP/1.1\r\nHost: x\r\n"},
				{"route without a body", "GET /healthz HTTP/1.1\r\nHost: x\r\n"},
				{"intake with a key", "POST /v1/events/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + stacktest.APIKey + "\r\nContent-Type: application/json\r\n"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					request := fmt.Sprintf("%sContent-Length: %d\r\n\r\n[%s", tc.head, announcedMiB, sent)
					grown := heapHeldBy(t, s, request, conns, 40<<20)
					t.Logf("%d connections announcing %d KiB and sending %d KiB: heap +%.1f MiB (%.1f KiB a connection)",
						conns, announcedMiB>>10, len(request)>>10, float64(grown)/(1<<20), float64(grown)/conns/(1<<10))
					require.Less(t, grown, int64(40<<20), "the heap grew with what clients announced")
				})
			}
		})
	}
}

// heapHeldBy sends request on n connections and returns the most the live
// heap grew over them, watching until every connection has its answer or
// for 3s, and failing as soon as it passes bound.
func heapHeldBy(t *testing.T, s *stacktest.Stack, request string, n int, bound int64) int64 {
	t.Helper()
	live := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	base := live()
	var answered atomic.Int64
	for range n {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		_, err = io.WriteString(conn, request)
		require.NoError(t, err)
		go func() {
			// Any answer, or the connection's end, means the server is
			// done with the request.
			_, _ = conn.Read(make([]byte, 1))
			answered.Add(1)
		}()
	}
	var most int64
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && answered.Load() < int64(n); {
		most = max(most, live()-base)
		if most > bound {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return max(most, live()-base)
}

// rawAnswer writes request on conn and reads one answer, within limit.
func rawAnswer(t *testing.T, conn net.Conn, br *bufio.Reader, request string, limit time.Duration) (*http.Response, string, time.Duration) {
	t.Helper()
	start := time.Now()
	require.NoError(t, conn.SetDeadline(start.Add(limit)))
	_, err := io.WriteString(conn, request)
	require.NoError(t, err)
	resp, err := http.ReadResponse(br, nil)
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("no answer within %v to %.60q", limit, request)
	}
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), took
}

// A client that announces a body with Expect: 100-continue is refused
// from its headers when they do not do (no key, too large): it is never
// told to send the body. With a key, it is, and the event is taken.
func TestAPI_ExpectContinue(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true, NetHTTP: netHTTP}) // max_body_bytes: 64 KiB
		for _, tc := range []struct {
			name, auth string
			length     int
			status     int
		}{
			{"no key", "", 100, http.StatusUnauthorized},
			{"wrong key", "Bearer nope", 100, http.StatusUnauthorized},
			{"too large", "Bearer " + stacktest.APIKey, 1 << 20, http.StatusRequestEntityTooLarge},
		} {
			t.Run(tc.name, func(t *testing.T) {
				conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
				require.NoError(t, err)
				defer conn.Close()
				req := "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
				if tc.auth != "" {
					req += "Authorization: " + tc.auth + "\r\n"
				}
				resp, body, _ := rawAnswer(t, conn, bufio.NewReader(conn), fmt.Sprintf("%sContent-Length: %d\r\n\r\n", req, tc.length), 10*time.Second)
				require.Equal(t, tc.status, resp.StatusCode, body)
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			})
		}

		conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
		require.NoError(t, err)
		defer conn.Close()
		br := bufio.NewReader(conn)
		ev := `{"id":"continued","name":"install"}`
		resp, _, _ := rawAnswer(t, conn, br, fmt.Sprintf("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", stacktest.APIKey, len(ev)), 10*time.Second)
		require.Equal(t, http.StatusContinue, resp.StatusCode)
		resp, body, _ := rawAnswer(t, conn, br, ev, 10*time.Second)
		require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	})
}

// A body shorter than its Content-Length is answered once no more of it
// arrives for a few seconds (the body timeout), not held for the
// connection's whole read timeout; without a key it is answered at once.
func TestAPI_ShortBody(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true, NetHTTP: netHTTP})
		for _, tc := range []struct {
			name, auth string
			status     int
		}{
			{"with a key", "Authorization: Bearer " + stacktest.APIKey + "\r\n", http.StatusRequestTimeout},
			{"without a key", "", http.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
				require.NoError(t, err)
				defer conn.Close()
				req := "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + tc.auth + "Content-Length: 100\r\n\r\n" + `{"id":`
				// Generous: a loaded machine may be slow, but not as slow
				// as the 30s read timeout of a connection.
				resp, body, took := rawAnswer(t, conn, bufio.NewReader(conn), req, 20*time.Second)
				t.Logf("answered %d after %v", resp.StatusCode, took.Round(time.Millisecond))
				require.Equal(t, tc.status, resp.StatusCode, body)
			})
		}
	})
}
