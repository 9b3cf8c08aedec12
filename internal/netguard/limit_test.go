package netguard

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// What a hostile partner can make an attempt hold: the head of the response
// is capped by Config.MaxResponseHeaderBytes, the body read by
// Config.MaxResponseBytes, and net/http's own limits hold for chunk lines,
// chunk extensions and trailers.

// answerWith starts a loopback partner that answers every request with
// answer, then closes the connection.
func answerWith(t *testing.T, answer []byte) (url string, conns *atomic.Int64) {
	t.Helper()
	return rawServer(t, func(_ int, c net.Conn, _ wireRequest) bool {
		_, _ = c.Write(answer) // a []byte: io.WriteString would copy it per answer
		return false
	})
}

var kib = strings.Repeat("x", 1000)

// padded is a header line of about 1 KiB; tiny, one of 4 to 8 bytes.
func padded(i int) string { return fmt.Sprintf("X-Pad-%04d: %s\r\n", i, kib) }
func tiny(i int) string   { return "X" + strconv.Itoa(i) + ":\r\n" }

// head is a 200 answer with body "ok" whose head, made of line(0),
// line(1)..., is at least size bytes.
func head(size int, line func(int) string) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
	for i := 0; b.Len() < size; i++ {
		b.WriteString(line(i))
	}
	b.WriteString("\r\nok")
	return b.Bytes()
}

// earlyHints is 1xx responses of at least size bytes, then okAnswer.
func earlyHints(size int) []byte {
	const hint = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
	return []byte(strings.Repeat(hint, size/len(hint)+1) + okAnswer)
}

var mib = strings.Repeat("x", 1<<20)

func TestClient_Do_headerTooLarge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		limit   int64 // Config.MaxResponseHeaderBytes; 0 for the default
		answer  []byte
		wantErr string
	}{
		{name: "1 MiB of headers", answer: head(1<<20, padded)},
		{name: "1 MiB of tiny headers", answer: head(1<<20, tiny)},
		{name: "one 1 MiB header", answer: []byte("HTTP/1.1 200 OK\r\nX-Pad: " + mib + "\r\nContent-Length: 2\r\n\r\nok")},
		{name: "1 MiB status line", answer: []byte("HTTP/1.1 200 " + mib + "\r\nContent-Length: 2\r\n\r\nok")},
		{name: "1 MiB of 1xx responses", answer: earlyHints(1 << 20)},
		{name: "limit set", limit: 16 << 10, answer: head(20<<10, padded),
			wantErr: "partner's response headers exceed 16 KiB"},
		{name: "limit in bytes", limit: 1000, answer: head(2000, padded),
			wantErr: "partner's response headers exceed 1000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, conns := answerWith(t, tt.answer)
			c := newClient(t, Config{AllowPrivate: true, MaxResponseHeaderBytes: tt.limit})

			resp, err := send(context.Background(), t, c, http.MethodGet, url+"/pb?token=s3cret", nil, nil)
			require.Nil(t, resp)
			var tl *HeaderTooLargeError
			require.ErrorAs(t, err, &tl)
			require.Equal(t, cmp.Or(tt.limit, 64<<10), tl.Limit)
			require.EqualError(t, err, cmp.Or(tt.wantErr, "partner's response headers exceed 64 KiB"))
			require.Equal(t, int64(1), conns.Load(), "one attempt is one send")
		})
	}
}

func TestClient_Do_headerUnderLimit(t *testing.T) {
	t.Parallel()
	for name, answer := range map[string][]byte{
		"60 KiB of headers":       head(60<<10, padded),
		"60 KiB of 1xx responses": earlyHints(60 << 10),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url, _ := answerWith(t, answer)
			c := newClient(t, Config{AllowPrivate: true})

			resp, err := send(context.Background(), t, c, http.MethodGet, url+"/pb", nil, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "ok", string(resp.Body))
		})
	}
}

func TestHeaderTooLargeError_Error(t *testing.T) {
	t.Parallel()
	for limit, want := range map[int64]string{
		64 << 10: "partner's response headers exceed 64 KiB",
		1 << 20:  "partner's response headers exceed 1 MiB",
		1536:     "partner's response headers exceed 1536 bytes",
		512:      "partner's response headers exceed 512 bytes",
	} {
		require.EqualError(t, &HeaderTooLargeError{Limit: limit}, want)
	}
}

// Bodies are read up to Config.MaxResponseBytes whatever the partner
// declares; net/http refuses oversized chunk lines, chunk extensions and
// trailers. A status arrived in every case, so the Response comes back, with
// the body read's error if there was one.
func TestClient_Do_hostileBody(t *testing.T) {
	t.Parallel()
	const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name          string
		answer        string
		wantBody      int // bytes kept
		wantTruncated bool
		wantErr       string // in the error; "" for none
	}{
		{name: "1 GiB declared", answer: "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n" + mib,
			wantBody: 64 << 10, wantTruncated: true},
		{name: "largest length declared", answer: "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n" + mib,
			wantBody: 64 << 10, wantTruncated: true},
		{name: "chunked 1 MiB", answer: chunked + strings.Repeat("1000\r\n"+mib[:4096]+"\r\n", 256) + "0\r\n\r\n",
			wantBody: 64 << 10, wantTruncated: true},
		{name: "chunk extensions", answer: chunked + strings.Repeat("1;"+kib+"\r\nx\r\n", 1024),
			wantBody: 16, wantErr: "chunked encoding contains too much non-data"},
		{name: "1 MiB chunk line", answer: chunked + "1;" + mib + "\r\nx\r\n0\r\n\r\n",
			wantErr: "header line too long"},
		{name: "1 MiB trailer", answer: chunked + "2\r\nok\r\n0\r\nX-Trailer: " + mib + "\r\n\r\n",
			wantBody: 2, wantErr: "http: suspiciously long trailer after chunked body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, _ := answerWith(t, []byte(tt.answer))
			c := newClient(t, Config{AllowPrivate: true})

			resp, err := send(context.Background(), t, c, http.MethodGet, url+"/pb", nil, nil)
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.wantErr)
			}
			require.NotNil(t, resp)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tt.wantTruncated, resp.Truncated)
			require.LessOrEqual(t, len(resp.Body), tt.wantBody)
			require.GreaterOrEqual(t, len(resp.Body), tt.wantBody*3/4)
		})
	}
}

// allocPerAttempt sends n requests to a loopback partner answering answer
// and returns the bytes the process allocated per attempt: the client's, and
// the few the partner spends reading each request.
func allocPerAttempt(t *testing.T, cfg Config, answer []byte, n int) uint64 {
	t.Helper()
	url, _ := answerWith(t, answer)
	cfg.AllowPrivate = true
	c := newClient(t, cfg)
	_, _ = send(context.Background(), t, c, http.MethodGet, url+"/pb", nil, nil) // one-time set-up out of the count

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		_, _ = send(context.Background(), t, c, http.MethodGet, url+"/pb", nil, nil)
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// The memory a hostile answer costs an attempt is bounded by the limits, not
// by what the partner sends. Not parallel: TotalAlloc counts every
// goroutine's allocations, so no other test may run meanwhile.
func TestClient_Do_hostileAnswerAllocations(t *testing.T) {
	const attempts = 50
	tests := []struct {
		name   string
		answer []byte
		bound  uint64 // bytes allocated per attempt
	}{
		{"1 MiB of headers", head(1<<20, padded), 256 << 10},
		// net/http spends some 200 bytes on each header it keeps: 64 KiB
		// of 4-byte headers cost about 30 times their size.
		{"1 MiB of tiny headers", head(1<<20, tiny), 4 << 20},
		// Each 1xx is parsed into a response of its own and dropped: some
		// 700 bytes for each 70-byte one.
		{"1 MiB of 1xx responses", earlyHints(1 << 20), 1 << 20},
		{"1 GiB body declared", []byte("HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n" + mib), 256 << 10},
		{"chunked 1 MiB body", []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strings.Repeat("1000\r\n"+mib[:4096]+"\r\n", 256) + "0\r\n\r\n"), 256 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := allocPerAttempt(t, Config{}, tt.answer, attempts)
			t.Logf("%d KiB allocated per attempt over %d attempts (bound %d KiB)", got>>10, attempts, tt.bound>>10)
			require.Less(t, got, tt.bound)
		})
	}

	// The probe sees the cost it guards against: with net/http's default
	// limit the same partner's 1 MiB of headers is accepted and held.
	t.Run("net/http default limit", func(t *testing.T) {
		got := allocPerAttempt(t, Config{MaxResponseHeaderBytes: 10 << 20}, head(1<<20, padded), 10)
		t.Logf("1 MiB of headers, 10 MiB limit: %d KiB allocated per attempt", got>>10)
		require.Greater(t, got, uint64(1<<20))
	})
}

// setupHTTP2 starts a loopback HTTPS partner that speaks HTTP/2 and returns
// its URL and a client that trusts it.
func setupHTTP2(t *testing.T, handler http.HandlerFunc) (string, *Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the GOAWAYs the tests provoke
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := newClient(t, Config{AllowPrivate: true})
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c.http.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool // before the first request
	return srv.URL, c
}

// Over HTTP/2 the limit is net/http's header list limit.
func TestClient_Do_headerTooLargeHTTP2(t *testing.T) {
	t.Parallel()
	headers := func(n int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != 2 {
				w.WriteHeader(http.StatusHTTPVersionNotSupported)
				return
			}
			for i := range n {
				w.Header().Set(fmt.Sprintf("X-Pad-%04d", i), kib)
			}
			_, _ = io.WriteString(w, "ok")
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string // "" for a 200
	}{
		{name: "60 KiB of headers", handler: headers(60)},
		{name: "65 KiB of headers", handler: headers(65), wantErr: "partner's response headers exceed 64 KiB"},
		{name: "1 MiB of 1xx responses", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload; as=style")
			for range 20000 {
				w.WriteHeader(http.StatusEarlyHints)
			}
		}, wantErr: "partner's response headers exceed 64 KiB"},
		// The block runs on into more frames than the limit allows, which
		// net/http reports only as a protocol error on the connection.
		{name: "1 MiB of headers", handler: headers(1024), wantErr: "connection error: PROTOCOL_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, c := setupHTTP2(t, tt.handler)

			resp, err := c.Do(context.Background(), get(t, url+"/pb?token=s3cret"))
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				return
			}
			require.Nil(t, resp)
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}
