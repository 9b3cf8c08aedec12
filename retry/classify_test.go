package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/retry"
)

// blockedError stands in for the SSRF dialer's error.
type blockedError struct{ addr string }

func (e *blockedError) Error() string { return "address " + e.addr + " blocked" }
func (e *blockedError) Blocked() bool { return true }

// notBlockedError has the method but says no.
type notBlockedError struct{}

func (notBlockedError) Error() string { return "guard: allowed" }
func (notBlockedError) Blocked() bool { return false }

// timeoutError is a net.Error that timed out, as a dial or read deadline gives.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// clientErr wraps err the way http.Client.Do does.
func clientErr(err error) error {
	return &url.Error{Op: "Post", URL: "https://pb.acme.example/c", Err: err}
}

// dialErr wraps err the way net.Dialer does.
func dialErr(err error) error {
	return clientErr(&net.OpError{Op: "dial", Net: "tcp", Err: err})
}

func TestSuccess_Classify(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	def := retry.Success{}
	bodyRule, err := retry.ParseSuccess([]string{"2xx"}, "(?i)error")
	require.NoError(t, err)
	only200, err := retry.ParseSuccess([]string{"200"}, "")
	require.NoError(t, err)
	odd, err := retry.ParseSuccess([]string{"2xx", "404"}, "")
	require.NoError(t, err)

	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}

	tests := []struct {
		name string
		s    retry.Success
		r    retry.Result
		want retry.Decision
	}{
		// Delivered.
		{"200", def, retry.Result{StatusCode: 200}, retry.Decision{Outcome: retry.Delivered, Reason: "HTTP 200"}},
		{"204", def, retry.Result{StatusCode: 204}, retry.Decision{Outcome: retry.Delivered, Reason: "HTTP 204"}},
		{"200 body fine", bodyRule, retry.Result{StatusCode: 200, Body: []byte(`{"ok":true}`)}, retry.Decision{Outcome: retry.Delivered, Reason: "HTTP 200"}},
		{"404 declared success", odd, retry.Result{StatusCode: 404}, retry.Decision{Outcome: retry.Delivered, Reason: "HTTP 404"}},

		// 2xx failing the success rule: Retry (see Classify's doc).
		{"200 body matched", bodyRule, retry.Result{StatusCode: 200, Body: []byte(`{"status":"ERROR"}`)},
			retry.Decision{Outcome: retry.Retry, Reason: "HTTP 200 but body matched (?i)error"}},
		{"202 not in status list", only200, retry.Result{StatusCode: 202},
			retry.Decision{Outcome: retry.Retry, Reason: "HTTP 202 is not in success.status"}},

		// Retryable statuses.
		{"408", def, retry.Result{StatusCode: 408}, retry.Decision{Outcome: retry.Retry, Reason: "HTTP 408"}},
		{"425", def, retry.Result{StatusCode: 425}, retry.Decision{Outcome: retry.Retry, Reason: "HTTP 425"}},
		{"429 no header", def, retry.Result{StatusCode: 429}, retry.Decision{Outcome: retry.Retry, Reason: "HTTP 429"}},
		{"429 seconds", def, retry.Result{StatusCode: 429, Header: hdr("Retry-After", "120")},
			retry.Decision{Outcome: retry.Retry, RetryAfter: 2 * time.Minute, Reason: "HTTP 429"}},
		{"429 http-date", def, retry.Result{StatusCode: 429, Header: hdr("Retry-After", "Wed, 25 Nov 2026 18:05:00 GMT")},
			retry.Decision{Outcome: retry.Retry, RetryAfter: 5 * time.Minute, Reason: "HTTP 429"}},
		{"429 garbage header", def, retry.Result{StatusCode: 429, Header: hdr("Retry-After", "soon")},
			retry.Decision{Outcome: retry.Retry, Reason: "HTTP 429"}},
		{"500", def, retry.Result{StatusCode: 500}, retry.Decision{Outcome: retry.Retry, Reason: "HTTP 500"}},
		{"502", def, retry.Result{StatusCode: 502}, retry.Decision{Outcome: retry.Retry, Reason: "HTTP 502"}},
		{"503 seconds", def, retry.Result{StatusCode: 503, Header: hdr("Retry-After", "30")},
			retry.Decision{Outcome: retry.Retry, RetryAfter: 30 * time.Second, Reason: "HTTP 503"}},
		{"504", def, retry.Result{StatusCode: 504}, retry.Decision{Outcome: retry.Retry, Reason: "HTTP 504"}},
		{"599", def, retry.Result{StatusCode: 599}, retry.Decision{Outcome: retry.Retry, Reason: "HTTP 599"}},
		{"500 with body read error", def, retry.Result{StatusCode: 500, Err: io.ErrUnexpectedEOF},
			retry.Decision{Outcome: retry.Retry, Reason: "HTTP 500"}},

		// Rejected: redirects and other 4xx.
		{"301", def, retry.Result{StatusCode: 301, Header: hdr("Location", "https://new.acme.example/c")},
			retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 301 redirect to https://new.acme.example/c (not followed)"}},
		{"302", def, retry.Result{StatusCode: 302}, retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 302 redirect (not followed)"}},
		{"307", def, retry.Result{StatusCode: 307}, retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 307 redirect (not followed)"}},
		{"400", def, retry.Result{StatusCode: 400}, retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 400"}},
		{"401", def, retry.Result{StatusCode: 401}, retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 401"}},
		{"404", def, retry.Result{StatusCode: 404}, retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 404"}},
		{"410", def, retry.Result{StatusCode: 410}, retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 410"}},
		{"400 ignores retry-after", def, retry.Result{StatusCode: 400, Header: hdr("Retry-After", "60")},
			retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 400"}},
		{"404 with body_not_match", bodyRule, retry.Result{StatusCode: 404, Body: []byte("error")},
			retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 404"}},
		{"1xx", def, retry.Result{StatusCode: 101}, retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 101"}},
		{"600", def, retry.Result{StatusCode: 600}, retry.Decision{Outcome: retry.Rejected, Reason: "HTTP 600"}},

		// Transport errors.
		{"deadline exceeded", def, retry.Result{Err: clientErr(context.DeadlineExceeded)},
			retry.Decision{Outcome: retry.Retry, Reason: "timeout"}},
		{"net timeout", def, retry.Result{Err: dialErr(timeoutError{})},
			retry.Decision{Outcome: retry.Retry, Reason: "timeout"}},
		{"os deadline", def, retry.Result{Err: clientErr(&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded})},
			retry.Decision{Outcome: retry.Retry, Reason: "timeout"}},
		{"connection refused", def, retry.Result{Err: dialErr(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED})},
			retry.Decision{Outcome: retry.Retry, Reason: "connection refused"}},
		{"connection reset", def, retry.Result{Err: clientErr(&net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}})},
			retry.Decision{Outcome: retry.Retry, Reason: "connection reset"}},
		{"closed before response", def, retry.Result{Err: clientErr(io.EOF)},
			retry.Decision{Outcome: retry.Retry, Reason: "connection closed before a response"}},
		{"dns", def, retry.Result{Err: dialErr(&net.DNSError{Err: "no such host", Name: "pb.acme.example", IsNotFound: true})},
			retry.Decision{Outcome: retry.Retry, Reason: "dns: lookup pb.acme.example: no such host"}},
		{"canceled", def, retry.Result{Err: clientErr(context.Canceled)},
			retry.Decision{Outcome: retry.Retry, Reason: "canceled"}},
		{"other transport error", def, retry.Result{Err: errors.New("tls: handshake failure")},
			retry.Decision{Outcome: retry.Retry, Reason: "tls: handshake failure"}},
		{"no response, no error", def, retry.Result{},
			retry.Decision{Outcome: retry.Retry, Reason: "no response"}},

		// Blocked by the SSRF guard.
		{"blocked", def, retry.Result{Err: dialErr(&blockedError{addr: "10.0.0.1"})},
			retry.Decision{Outcome: retry.Blocked, Reason: "address 10.0.0.1 blocked"}},
		{"blocked via fmt wrap", def, retry.Result{Err: fmt.Errorf("send: %w", &blockedError{addr: "169.254.169.254"})},
			retry.Decision{Outcome: retry.Blocked, Reason: "address 169.254.169.254 blocked"}},
		{"Blocked() false", def, retry.Result{Err: dialErr(notBlockedError{})},
			retry.Decision{Outcome: retry.Retry, Reason: `Post "https://pb.acme.example/c": dial tcp: guard: allowed`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.s.Classify(tt.r, now))
		})
	}
}

func TestSuccess_ClassifyLongReason(t *testing.T) {
	t.Parallel()

	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'x'
	}
	d := retry.Success{}.Classify(retry.Result{Err: errors.New(string(long))}, time.Now())
	require.Equal(t, retry.Retry, d.Outcome)
	require.Less(t, len(d.Reason), 210)
}
