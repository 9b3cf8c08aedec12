package netguard

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const keepAlive = 30 * time.Second

// Config configures a [Client]. The zero value is usable: zero (or negative)
// fields take the default stated in their comment.
type Config struct {
	// AllowPrivate switches the SSRF guard off: any address may be dialled.
	// Default false (guard on). For local tests and demos only.
	AllowPrivate bool

	// Timeout bounds a whole request: dial, TLS, sending, waiting for and
	// reading the response. Default 10s. A deadline on the ctx given to Do
	// applies too; the earlier wins.
	Timeout time.Duration

	// DialTimeout bounds one TCP connect. Default 5s.
	DialTimeout time.Duration

	// TLSHandshakeTimeout bounds the TLS handshake. Default 5s.
	TLSHandshakeTimeout time.Duration

	// MaxResponseBytes is how much of a response body is read; the rest is
	// discarded and Response.Truncated set. Default 64 KiB.
	MaxResponseBytes int64

	// MaxResponseHeaderBytes bounds what a partner may send before its body:
	// the status line and headers, 1xx informational responses included (for
	// HTTP/2, the decoded header list). A partner that sends more fails the
	// attempt with a *HeaderTooLargeError. Default 64 KiB; net/http's own
	// default, 10 MiB, let a hostile partner make every attempt hold that
	// much. Parsing a head of thousands of tiny headers allocates up to about
	// 30 times its size.
	MaxResponseHeaderBytes int64

	// MaxIdleConnsPerHost is how many idle keep-alive connections are kept per
	// partner host. Default 64.
	MaxIdleConnsPerHost int

	// Resolver resolves host names before the guard checks them. Default
	// net.DefaultResolver; a *net.Resolver or a ResolverFunc fits.
	Resolver Resolver

	// UserAgent is sent when the request has no User-Agent header of its own.
	// Default "postback/dev".
	UserAgent string
}

// WithDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	c.Timeout = cmp.Or(max(c.Timeout, 0), 10*time.Second)
	c.DialTimeout = cmp.Or(max(c.DialTimeout, 0), 5*time.Second)
	c.TLSHandshakeTimeout = cmp.Or(max(c.TLSHandshakeTimeout, 0), 5*time.Second)
	c.MaxResponseBytes = cmp.Or(max(c.MaxResponseBytes, 0), 64<<10)
	c.MaxResponseHeaderBytes = cmp.Or(max(c.MaxResponseHeaderBytes, 0), 64<<10)
	c.MaxIdleConnsPerHost = cmp.Or(max(c.MaxIdleConnsPerHost, 0), 64)
	c.Resolver = cmp.Or(c.Resolver, Resolver(net.DefaultResolver))
	c.UserAgent = cmp.Or(c.UserAgent, "postback/dev")
	return c
}

// Client sends postbacks through the guard. It is safe for concurrent use
// and keeps connections alive between requests; build one and share it.
type Client struct {
	cfg  Config
	http *http.Client
}

// New returns a Client for cfg (defaults applied).
func New(cfg Config) *Client {
	cfg = cfg.WithDefaults()
	d := newDialer(cfg)
	transport := &http.Transport{
		Proxy:                  nil, // a proxy would hide the real target from the guard
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    cfg.TLSHandshakeTimeout,
		ForceAttemptHTTP2:      true, // a custom DialContext turns it off otherwise
		MaxIdleConnsPerHost:    cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: cfg.MaxResponseHeaderBytes, // HTTP/2's header list limit too
	}
	return &Client{
		cfg: cfg,
		http: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
			// No Client.Timeout: Do puts its own deadline on the context,
			// which also covers reading the body.
		},
	}
}

// Response is what a partner answered.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte        // at most Config.MaxResponseBytes
	Truncated  bool          // the body was longer than Body
	Duration   time.Duration // from the start of the send (dial included) to the end of the body read
	RemoteAddr string        // ip:port the response came from, when known
}

// Do sends req and reads its response. Redirects are not followed: a 3xx is
// returned as the response. At most Config.MaxResponseBytes of the body are
// read, then the body is closed. The request is bounded by Config.Timeout and
// by ctx, which replaces req's context.
//
// A refused destination returns an error that matches *BlockedError with
// errors.As; a partner whose headers exceed Config.MaxResponseHeaderBytes, a
// *HeaderTooLargeError. A timeout returns an error for which errors.Is(err,
// context.DeadlineExceeded) holds. If the status line and headers arrived but
// reading the body failed, Do returns that partial Response together with the
// error.
func (c *Client) Do(ctx context.Context, req *http.Request) (*Response, error) {
	if err := CheckURL(req.URL, c.cfg.AllowPrivate); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	var remote atomic.Pointer[string]
	// No Got1xxResponse hook: with one, net/http stops counting 1xx
	// responses against MaxResponseHeaderBytes.
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			addr := info.Conn.RemoteAddr().String()
			remote.Store(&addr)
		},
	})
	req = req.WithContext(ctx)
	if req.Header.Get("User-Agent") == "" {
		// WithContext shares the header map with the caller's request.
		req.Header = req.Header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error repeats the URL, whose query may hold partner tokens;
		// the caller already knows the URL it sent.
		if urlErr, ok := errors.AsType[*url.Error](err); ok {
			err = fmt.Errorf("%s: %w", urlErr.Op, urlErr.Err)
		}
		if headerTooLarge(err) {
			return nil, &HeaderTooLargeError{Limit: c.cfg.MaxResponseHeaderBytes}
		}
		return nil, c.wrap(ctx, err)
	}
	defer resp.Body.Close()

	body, truncated, err := readBody(resp.Body, resp.ContentLength, c.cfg.MaxResponseBytes)
	out := &Response{
		StatusCode: resp.StatusCode,
		Header:     resp.Header,
		Body:       body,
		Truncated:  truncated,
		Duration:   time.Since(start),
	}
	if addr := remote.Load(); addr != nil {
		out.RemoteAddr = *addr
	}
	if err != nil {
		return out, fmt.Errorf("read response body: %w", c.wrap(ctx, err))
	}
	return out, nil
}

// readBody reads at most limit (> 0) bytes of r and reports whether r had
// more. The buffer starts at the declared length, when there is one, and
// doubles up to limit: a body costs at most about twice the limit, where
// io.ReadAll, growing by a quarter at a time, allocates about five times what
// it returns.
func readBody(r io.Reader, declared, limit int64) (body []byte, truncated bool, err error) {
	size := int64(512) // length unknown: start small, as most answers are
	if declared >= 0 {
		size = min(declared, limit-1) + 1 // room to see EOF without growing
	}
	buf := make([]byte, 0, min(size, limit))
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, false, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
	// Full: one more byte tells a longer body from one of exactly limit.
	var probe [1]byte
	n, err := io.ReadFull(r, probe[:])
	if err == io.EOF {
		err = nil
	}
	return buf, n > 0, err
}

// HeaderTooLargeError reports a partner that sent more than
// Config.MaxResponseHeaderBytes before its body. Do returns no Response with
// it: to a caller it is a transport failure, like an answer that is not HTTP,
// and as worth retrying, since the partner's next answer may be sane.
type HeaderTooLargeError struct {
	Limit int64 // the Config.MaxResponseHeaderBytes in force
}

func (e *HeaderTooLargeError) Error() string {
	return "partner's response headers exceed " + formatBytes(e.Limit)
}

// headerTooLarge reports whether err is net/http's refusal of a response
// head over Transport.MaxResponseHeaderBytes. net/http has no sentinel for
// it, only these messages: HTTP/1.x, then HTTP/2's header list and 1xx
// responses. The tests catch a change of wording. An HTTP/2 header block
// that runs on past the limit into further frames gets only "connection
// error: PROTOCOL_ERROR" from net/http, which cannot be told apart.
func headerTooLarge(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "net/http: server response headers exceeded ") ||
		strings.Contains(msg, "http2: response header list larger than advertised limit") ||
		strings.Contains(msg, "; header list too large")
}

// formatBytes is n in the largest binary unit that divides it: "64 KiB".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// wrap makes a timeout recognisable whatever layer reported it: the transport
// and the body reader do not always wrap the context's error.
func (c *Client) wrap(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
}

// CloseIdleConnections closes the keep-alive connections not in use.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
