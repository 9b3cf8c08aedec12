package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// Result is what one attempt produced.
type Result struct {
	StatusCode int         // 0 when no response arrived
	Header     http.Header // response headers; may be nil
	Body       []byte      // the start of the response body, as read (truncated)
	Err        error       // transport error: timeout, connection refused, blocked address...
}

// Decision is the classification of one attempt.
type Decision struct {
	Outcome Outcome
	// RetryAfter is the wait the partner asked for (Retry-After) on a Retry;
	// 0 if none. Pass it to [Policy.Next].
	RetryAfter time.Duration
	// Reason is a short human explanation for logs, attempt history and the
	// DLQ: "HTTP 503", "timeout", "connection refused",
	// "HTTP 200 but body matched (?i)error", "address 10.0.0.1 blocked".
	Reason string
	// Rule names the responses rule that decided, as
	// `responses[0] (status 200, body_match "success=true")`; "" when
	// none did.
	Rule string
}

// Classify decides what one attempt came to, in this order:
//
//  1. A transport error with no status: if errors.As finds an error with a
//     Blocked() bool method that returns true (the SSRF guard), Blocked.
//     Anything else (timeout, refused, reset, DNS, TLS...) is Retry.
//  2. The first of the partner's responses rules (see [Success.WithResponses])
//     that matches decides: Delivered, Duplicate, Retry (Retry-After
//     honoured) or Rejected.
//  3. The success rule matches: Delivered.
//  4. 408, 425, 429 and 5xx: Retry, with the Retry-After header honoured.
//  5. A 2xx that fails the success rule (body_not_match matched, or the
//     code is not in success.status): Retry. A partner that answers
//     200 {"error":"try later"} is usually having a transient problem;
//     dead-lettering at once would need a human to replay every such
//     conversion, while retrying is bounded by max_attempts/max_age (then
//     exhausted, in the DLQ all the same) and duplicates are harmless because
//     every attempt carries the same Idempotency-Key.
//  6. 3xx (redirects are not followed), other 4xx, and anything else
//     (1xx, codes >= 600): Rejected.
//
// When a status arrived but Err is also set (the body read failed), the
// status decides: the partner answered.
func (s Success) Classify(r Result, now time.Time) Decision {
	if r.StatusCode == 0 {
		return classifyErr(r.Err)
	}
	code := r.StatusCode
	reason := "HTTP " + strconv.Itoa(code)
	if d, ok := s.classifyRules(r, reason, now); ok {
		return d
	}
	switch {
	case s.Match(code, r.Body):
		return Decision{Outcome: Delivered, Reason: reason}
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code >= 500 && code <= 599:
		ra, _ := ParseRetryAfter(r.Header.Get("Retry-After"), now)
		return Decision{Outcome: Retry, RetryAfter: ra, Reason: reason}
	case code >= 200 && code <= 299:
		if s.statusOK(code) {
			reason += " but body matched " + s.bodyNotMatch.String()
		} else {
			reason += " is not in success.status"
		}
		ra, _ := ParseRetryAfter(r.Header.Get("Retry-After"), now)
		return Decision{Outcome: Retry, RetryAfter: ra, Reason: reason}
	case code >= 300 && code <= 399:
		reason += " redirect (not followed)"
		if loc := r.Header.Get("Location"); loc != "" {
			reason = "HTTP " + strconv.Itoa(code) + " redirect to " + truncate(loc, 200) + " (not followed)"
		}
		return Decision{Outcome: Rejected, Reason: reason}
	default:
		return Decision{Outcome: Rejected, Reason: reason}
	}
}

// blocker is implemented by the SSRF guard's error.
type blocker interface{ Blocked() bool }

func classifyErr(err error) Decision {
	if err == nil {
		return Decision{Outcome: Retry, Reason: "no response"}
	}
	var b blocker
	if errors.As(err, &b) && b.Blocked() {
		// The guard's own message ("address 10.0.0.1 blocked"), without the
		// `Post "https://...": dial tcp ...:` wrapping of net/http.
		reason := "blocked"
		if e, ok := b.(error); ok {
			reason = e.Error()
		}
		return Decision{Outcome: Blocked, Reason: reason}
	}
	return Decision{Outcome: Retry, Reason: transportReason(err)}
}

func transportReason(err error) string {
	var ne net.Error
	var dns *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response"
	case errors.As(err, &dns):
		return "dns: " + dns.Error()
	}
	return truncate(err.Error(), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
