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
		Proxy:                 nil, // a proxy would hide the real target from the guard
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		ForceAttemptHTTP2:     true, // a custom DialContext turns it off otherwise
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
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
// errors.As. A timeout returns an error for which errors.Is(err,
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
		return nil, c.wrap(ctx, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	out := &Response{
		StatusCode: resp.StatusCode,
		Header:     resp.Header,
		Body:       body,
		Duration:   time.Since(start),
	}
	if int64(len(body)) > c.cfg.MaxResponseBytes {
		out.Body, out.Truncated = body[:c.cfg.MaxResponseBytes], true
	}
	if addr := remote.Load(); addr != nil {
		out.RemoteAddr = *addr
	}
	if err != nil {
		return out, fmt.Errorf("read response body: %w", c.wrap(ctx, err))
	}
	return out, nil
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
