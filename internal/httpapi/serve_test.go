package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/httpapi"
	"github.com/postbackhq/postback/internal/stacktest"
)

// streamBody posts body without a Content-Length (chunked), so the server
// cannot read it before the handler runs.
func streamBody(t *testing.T, s *stacktest.Stack, path, body string) (int, map[string]any) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		for chunk := range strings.SplitSeq(body, "\n") {
			if _, err := io.WriteString(pw, chunk+"\n"); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, s.API.URL+path, pr)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+stacktest.APIKey)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// Bodies of unknown length, and bodies longer than what the server reads
// before its handler runs, are read up to api.max_body_bytes, on both
// servers.
func TestAPI_StreamedBodies(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true, NetHTTP: netHTTP})
		var batch strings.Builder
		for i := range 500 { // about 60 KiB: under the limit of 64 KiB, over one read buffer
			fmt.Fprintf(&batch, `{"id":"st-%03d","name":"install","params":{"pad":"%s"}}`+"\n", i, strings.Repeat("p", 60))
		}
		require.Greater(t, batch.Len(), 32<<10)
		require.Less(t, batch.Len(), 64<<10)
		status, body := streamBody(t, s, "/v1/events/batch", strings.TrimSuffix(batch.String(), "\n"))
		require.Equal(t, http.StatusOK, status, body)
		results := body["results"].([]any)
		require.Len(t, results, 500)
		for _, r := range results {
			require.Equal(t, "accepted", r.(map[string]any)["status"], r)
		}

		batch.WriteString(strings.Repeat(`{"id":"over","name":"install"}`+"\n", 600))
		status, body = streamBody(t, s, "/v1/events/batch", batch.String())
		require.Equal(t, http.StatusRequestEntityTooLarge, status, body)
		require.Equal(t, "body_too_large", body["error"].(map[string]any)["code"])
	})
}

// rawExchange writes request on a new connection and reads the answer.
func rawExchange(t *testing.T, s *stacktest.Stack, request string) (*http.Response, map[string]any) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, request)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	if resp.Header.Get("Content-Type") == "application/json" {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out), "answer of %q", request)
	}
	return resp, out
}

// Requests Serve cannot read are answered in the API's error shape, not
// in fasthttp's plain text.
func TestServe_UnreadableRequests(t *testing.T) {
	t.Parallel()
	s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true})

	resp, body := rawExchange(t, s, "POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("h", 20<<10)+"\r\n\r\n")
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	require.Equal(t, "headers_too_large", body["error"].(map[string]any)["code"])

	resp, body = rawExchange(t, s, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "bad_request", body["error"].(map[string]any)["code"])
	require.Empty(t, resp.Header.Get("Server"), "no server banner")

	// fasthttp's message about an unreadable request would quote it, the
	// API key included.
	resp, _ = rawExchange(t, s, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+stacktest.APIKey+
		"\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Eventually(t, func() bool { return strings.Contains(s.Logs(), "http: ") }, 5*time.Second, 10*time.Millisecond, "fasthttp logged the error")
	require.NotContains(t, s.Logs(), stacktest.APIKey)

	// A keep-alive connection carries requests one after another.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 3 {
		ev := fmt.Sprintf(`{"id":"ka-%d","name":"install"}`, i)
		_, err := fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", stacktest.APIKey, len(ev), ev)
		require.NoError(t, err)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, string(b))
	}

	// A route that is not an intake one goes through net/http's handler.
	resp, _ = rawExchange(t, s, "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// Intake routes match the path as sent, as net/http's mux does: a path
// that only normalizes to an intake route is not one.
func TestAPI_PathsAsSent(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true, NetHTTP: netHTTP})
		for i, path := range []string{"//v1/events", "/v1/./events", "/v1/x/../events", "/v1%2Fevents", "/v1/events/"} {
			req, err := http.NewRequest(http.MethodPost, s.API.URL+"/", strings.NewReader(fmt.Sprintf(`{"id":"path-%d","name":"install"}`, i)))
			require.NoError(t, err)
			req.URL.Opaque = path // sent as is
			req.Header.Set("Authorization", "Bearer "+stacktest.APIKey)
			req.Header.Set("Content-Type", "application/json")
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noRedirect.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.NotEqual(t, http.StatusAccepted, resp.StatusCode, path)
		}
		status, body := s.Post(t, "/v1/events?source=test", "application/json", `{"id":"path-q","name":"install"}`)
		require.Equal(t, http.StatusAccepted, status, body)
	})
}

// A body sent to a route other than intake, which takes none, is not
// read: the answer comes from the headers, and the connection closes
// rather than read what is left.
func TestServe_OtherRoutesLeaveTheBody(t *testing.T) {
	t.Parallel()
	s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true})
	for _, tc := range []struct {
		request string
		status  int
	}{
		// A chunked body that never ends.
		{"POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8000\r\n" + strings.Repeat("x", 1000), http.StatusNotFound},
		{"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 1000), http.StatusOK},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.API.URL, "http://"))
		require.NoError(t, err)
		defer conn.Close()
		br := bufio.NewReader(conn)
		resp, body, _ := rawAnswer(t, conn, br, tc.request, 10*time.Second)
		require.Equal(t, tc.status, resp.StatusCode, body)
		require.True(t, resp.Close, "the connection closes")
		_, err = br.ReadByte()
		require.ErrorIs(t, err, io.EOF)
	}

	status, _ := s.Get(t, "/healthz")
	require.Equal(t, http.StatusOK, status)
}

// Shutdown right after Serve starts, or before, still ends Serve.
func TestServe_ShutdownAtStart(t *testing.T) {
	t.Parallel()
	s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true})
	for i := range 50 {
		api, err := httpapi.New(httpapi.Config{Client: s.Client, Config: s.Live, Redis: s.Redis})
		require.NoError(t, err)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		done := make(chan error, 1)
		if i%2 == 0 {
			go func() { done <- api.Serve(ln) }()
			require.NoError(t, api.Shutdown(context.Background()))
		} else {
			require.NoError(t, api.Shutdown(context.Background()))
			go func() { done <- api.Serve(ln) }()
		}
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Serve still running after Shutdown", i)
		}
	}
}

// A body longer than what the server reads before its handler runs, and
// under api.max_body_bytes, is taken whole on both servers, chunked or
// with a Content-Length.
func TestAPI_LargeBodiesUnderTheLimit(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		b := setupOn(t, netHTTP) // max_body_bytes: the default 1 MiB
		var batch strings.Builder
		for i := range 1000 {
			fmt.Fprintf(&batch, `{"id":"big-%04d","name":"install","params":{"pad":"%s"}}`+"\n", i, strings.Repeat("p", 120))
		}
		require.Greater(t, batch.Len(), 128<<10)
		status, body := streamBody(t, b.stack, "/v1/events/batch", strings.TrimSuffix(batch.String(), "\n"))
		require.Equal(t, http.StatusOK, status, body)
		require.Len(t, body["results"], 1000)
		status, body = b.stack.Post(t, "/v1/events/batch", "application/x-ndjson", strings.ReplaceAll(batch.String(), "big-", "cl-"))
		require.Equal(t, http.StatusOK, status, body)
		require.Len(t, body["results"], 1000)
	})
}
