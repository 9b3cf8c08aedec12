package httpapi_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/stacktest"
)

// The Authorization header: its scheme is case-insensitive (RFC 7235) and
// it must be sent once; both servers agree.
func TestAuth_HeaderForms(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true, NetHTTP: netHTTP})
		key := stacktest.APIKey
		for i, tc := range []struct {
			auth   []string
			status int
		}{
			{[]string{"Bearer " + key}, http.StatusAccepted},
			{[]string{"bearer " + key}, http.StatusAccepted},
			{[]string{"BEARER " + key}, http.StatusAccepted},
			{[]string{"Bearer  " + key}, http.StatusAccepted},
			{[]string{"Bearer " + key, "Bearer " + key}, http.StatusUnauthorized},
			{[]string{"Bearer " + key, "Bearer wrong"}, http.StatusUnauthorized},
			{[]string{"Bearer wrong", "Bearer " + key}, http.StatusUnauthorized},
			{[]string{"Bearer" + key}, http.StatusUnauthorized},
			{[]string{"Bearer"}, http.StatusUnauthorized},
		} {
			req, err := http.NewRequest(http.MethodPost, s.API.URL+"/v1/events", strings.NewReader(fmt.Sprintf(`{"id":"auth-%d","name":"install"}`, i)))
			require.NoError(t, err)
			req.Header["Authorization"] = tc.auth
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode, "%q", tc.auth)
		}
	})
}

// An event's Content-Type may name no charset or UTF-8, which JSON is
// (RFC 8259); another charset is refused, single or batch.
func TestPostEvent_Charset(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true, NetHTTP: netHTTP})
		for i, tc := range []struct {
			path, ct string
			status   int
		}{
			{"/v1/events", "application/json; charset=utf-8", http.StatusAccepted},
			{"/v1/events", "application/json;charset=UTF-8", http.StatusAccepted},
			{"/v1/events", `application/json; charset="utf-8"`, http.StatusAccepted},
			{"/v1/events", "application/json; charset=utf-16", http.StatusUnsupportedMediaType},
			{"/v1/events", "application/json; charset=iso-8859-1", http.StatusUnsupportedMediaType},
			{"/v1/events/batch", "application/x-ndjson; charset=utf-8", http.StatusOK},
			{"/v1/events/batch", "application/x-ndjson; charset=utf-16", http.StatusUnsupportedMediaType},
			{"/v1/events/batch", "application/json; charset=utf-32", http.StatusUnsupportedMediaType},
		} {
			status, body := s.Post(t, tc.path, tc.ct, fmt.Sprintf(`{"id":"cs-%d","name":"install"}`, i))
			require.Equal(t, tc.status, status, "%s %s: %v", tc.path, tc.ct, body)
			if tc.status == http.StatusUnsupportedMediaType {
				require.Equal(t, "unsupported_media_type", body["error"].(map[string]any)["code"])
			}
		}
	})
}

// A request line of an HTTP version other than 1.x is refused with 505 by
// both servers.
func TestAPI_HTTPVersion(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true, NetHTTP: netHTTP})
		for _, version := range []string{"HTTP/9.9", "HTTP/2.0", "HTTP/0.9"} {
			for _, req := range []string{
				"GET /healthz " + version + "\r\nHost: x\r\n\r\n",
				"POST /v1/events " + version + "\r\nHost: x\r\nAuthorization: Bearer " + stacktest.APIKey + "\r\nContent-Length: 30\r\n\r\n" + `{"id":"v-1","name":"install"}` + " ",
			} {
				conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
				require.NoError(t, err)
				resp, body, _ := rawAnswer(t, conn, bufio.NewReader(conn), req, 10*time.Second)
				conn.Close()
				require.Equal(t, http.StatusHTTPVersionNotSupported, resp.StatusCode, "%.30q: %s", req, body)
			}
		}
	})
}

// Serve answers 400 at once to a request whose header block ends in bare
// LFs, rather than waiting for a CRLF that will never come. (net/http
// takes bare LF as a line end, which RFC 9112 allows a recipient to do.)
func TestServe_BareLF(t *testing.T) {
	t.Parallel()
	s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true})
	for _, req := range []string{
		"GET /healthz HTTP/1.1\nHost: x\n\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\n",
		"\nPOST /v1/events HTTP/1.1\nHost: x\nAuthorization: Bearer " + stacktest.APIKey + "\nContent-Length: 29\n\n" + `{"id":"lf-1","name":"install"}`,
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
		require.NoError(t, err)
		resp, body, took := rawAnswer(t, conn, bufio.NewReader(conn), req, 10*time.Second)
		conn.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%q: %s", req, body)
		require.Contains(t, body, "CRLF")
		t.Logf("%q: %d after %v", req, resp.StatusCode, took.Round(time.Millisecond))
	}
	// Bare LFs inside a block that CRLFCRLF ends are fasthttp's to take,
	// and a connection is checked once: later requests on it are not.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	br := bufio.NewReader(conn)
	for range 2 {
		resp, body, _ := rawAnswer(t, conn, br, "GET /healthz HTTP/1.1\nHost: x\r\n\r\n", 10*time.Second)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
}
