package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Timeouts of Serve's connections.
const (
	// serveReadTimeout bounds reading a request's headers; its body has
	// Config.BodyTimeout at a time.
	serveReadTimeout = 30 * time.Second
	// serveWriteTimeout bounds writing one answer.
	serveWriteTimeout = 30 * time.Second
	// serveIdleTimeout closes a keep-alive connection idle this long.
	serveIdleTimeout = 2 * time.Minute
	// serveHeaderMax is the most header bytes a request may have.
	serveHeaderMax = 16 << 10
)

// fastServer is the fasthttp server of Serve.
type fastServer struct {
	mu     sync.Mutex
	srv    *fasthttp.Server
	ln     net.Listener
	closed bool // Shutdown was called: Serve does not start, or returns
}

// Serve serves the API on ln until Shutdown, and returns nil then.
//
// It runs on fasthttp (github.com/valyala/fasthttp): the intake routes,
// which carry the load, natively; the others through net/http's handler
// (fasthttpadaptor). On a 2-core machine fasthttp took POST /v1/events
// from 0.41× to 0.55× of raw asynq Client.Enqueue (`postback bench`),
// because net/http's server spends a background read, a goroutine and
// several allocations on every request. Requests and answers are the same
// as ServeHTTP's, which the tests check on both.
//
// A request's headers are screened before any of its body is read (see
// screenFast), and a body takes memory as its bytes arrive, not as its
// Content-Length announces: a client without a key, or announcing a body
// it does not send, costs no more than its connection.
func (s *Server) Serve(ln net.Listener) error {
	slow := fasthttpadaptor.NewFastHTTPHandler(s.mux)
	srv := &fasthttp.Server{
		HeaderReceived: s.screenFast,
		Handler: func(c *fasthttp.RequestCtx) {
			x := fastExchange{c}
			// The path as sent, as net/http's mux matches it: fasthttp's
			// Path is decoded and normalized (//v1/./events would match).
			r := intakeRouteOf(c.Method(), requestPath(c.Request.Header.RequestURI()))
			if why := refusedBy(&c.Request.Header); why != admitted {
				s.refuse(x, r, why)
				return
			}
			if r != nil {
				s.intake(x, r)
				return
			}
			if id, ok := pauseRouteOf(c.Method(), requestPath(c.Request.Header.RequestURI())); ok {
				s.pause(x, id)
				return
			}
			slow(c)
		},
		ErrorHandler: s.fastError,
		Logger:       fastLogger{s.cfg.Logger},
		// fasthttp's messages about unreadable requests otherwise quote
		// the request, API key and event included.
		SecureErrorLogMessage: true,
		NoDefaultServerHeader: true,
		ReadTimeout:           serveReadTimeout,
		WriteTimeout:          serveWriteTimeout,
		IdleTimeout:           serveIdleTimeout,
		ReadBufferSize:        serveHeaderMax,
		// Every body reaches the handler as a stream, of which fasthttp
		// has read at most 8 KiB; fastExchange.body reads the rest as it
		// arrives, up to api.max_body_bytes (a reload can change it; a
		// server setting could not follow).
		MaxRequestBodySize:           exactBodyMax,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
	}
	s.fast.mu.Lock()
	switch {
	case s.fast.closed:
		s.fast.mu.Unlock()
		_ = ln.Close()
		return nil
	case s.fast.srv != nil:
		s.fast.mu.Unlock()
		return errors.New("httpapi: Serve is already running")
	}
	s.fast.srv, s.fast.ln = srv, ln
	s.fast.mu.Unlock()
	err := srv.Serve(crlfListener{ln})
	s.fast.mu.Lock()
	closed := s.fast.closed
	s.fast.mu.Unlock()
	if closed {
		return nil // the listener's close error, from Shutdown
	}
	return err
}

// Shutdown stops Serve: it stops accepting, lets the requests under way
// finish until ctx ends, then closes the connections. Called before Serve,
// it makes Serve return at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.fast.mu.Lock()
	s.fast.closed = true
	srv, ln := s.fast.srv, s.fast.ln
	s.fast.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.ShutdownWithContext(ctx)
	// fasthttp's Shutdown does nothing until its Serve has taken the
	// listener; closing it here ends a Serve that is just starting, too.
	_ = ln.Close()
	return err
}

// refusedHeader carries, from screenFast to Serve's handler, why a request
// is refused: a refusal, in decimal. screenFast removes one a client sent.
const refusedHeader = "X-Postback-Refused"

// screenFast screens a request as soon as fasthttp has read its headers,
// before it reads any of the body (fasthttp reads up to 8 KiB of a body
// before calling the handler). A request refused, or to a route that takes
// no body, has its body left unread: fasthttp is told there is none, and
// the connection closes after the answer. An intake request admitted has
// Config.BodyTimeout to send its first bytes (fastExchange.body gives it as
// much again whenever some arrive).
func (s *Server) screenFast(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	h.Del(refusedHeader)
	r := intakeRouteOf(h.Method(), requestPath(h.RequestURI()))
	why := admitted
	switch {
	case !bytes.HasPrefix(h.Protocol(), []byte("HTTP/1.")):
		why = refusedVersion // as net/http's server answers it
	case r != nil:
		why = s.screen(fastHeaders{h}, r, s.cfg.Config.Load())
		if why == refusedSize && !expectsContinue(h) {
			// A client sending a body too large unasked is still sending
			// it: closing under it would reset the connection, maybe
			// before the client reads the answer. The handler refuses it
			// after fasthttp's first read of the body, then fasthttp
			// drops what is left (see fastExchange.leaveBody).
			why = admitted
		}
	}
	if why == admitted && r != nil {
		return fasthttp.RequestConfig{ReadTimeout: s.cfg.BodyTimeout}
	}
	if _, ok := pauseRouteOf(h.Method(), requestPath(h.RequestURI())); why == admitted && ok {
		// A pause's reason: a small body, streamed as an intake body is,
		// and refused past 4 KiB by the handler.
		return fasthttp.RequestConfig{ReadTimeout: s.cfg.BodyTimeout}
	}
	if n, path := h.ContentLength(), requestPath(h.RequestURI()); why == admitted && n >= 0 && n <= maxErasureBody &&
		isErasureRoute(h.Method(), path) {
		// An erasure's identifier: a small body of known length, read whole.
		return fasthttp.RequestConfig{ReadTimeout: s.cfg.BodyTimeout}
	}
	if why != admitted {
		h.Set(refusedHeader, strconv.Itoa(int(why)))
	}
	if n := h.ContentLength(); n > 0 || n == -1 || why == refusedVersion {
		h.SetContentLength(0)
		h.SetConnectionClose()
	}
	h.Del(fasthttp.HeaderExpect) // no 100 Continue asking for a body
	return fasthttp.RequestConfig{}
}

// expectsContinue reports whether the client of h waits for 100 Continue
// before sending its body, as fasthttp tells (Request.MayContinue).
func expectsContinue(h *fasthttp.RequestHeader) bool {
	return h.IsHTTP11() && bytes.EqualFold(h.Peek(fasthttp.HeaderExpect), []byte("100-continue"))
}

// refusedBy is the refusal screenFast found for the request of h.
func refusedBy(h *fasthttp.RequestHeader) refusal {
	if v := h.Peek(refusedHeader); len(v) == 1 && v[0] > '0' && v[0] <= '9' {
		return refusal(v[0] - '0')
	}
	return admitted
}

// fastError answers a request fasthttp could not read, in the API's error
// shape.
func (s *Server) fastError(c *fasthttp.RequestCtx, err error) {
	x := fastExchange{c}
	var big *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, errBareLF):
		writeError(x, http.StatusBadRequest, "bad_request", "malformed HTTP request: "+errBareLF.Error(), "")
	case errors.As(err, &big):
		writeError(x, http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", fmt.Sprintf("request headers larger than %d bytes", serveHeaderMax), "")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(x, http.StatusRequestEntityTooLarge, "body_too_large", errTooLarge.Error(), "")
	default:
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			writeError(x, http.StatusRequestTimeout, "timeout", "the request was not received in time", "")
			return
		}
		writeError(x, http.StatusBadRequest, "bad_request", "malformed HTTP request", "")
	}
}

// fastLogger writes fasthttp's messages (a connection's read errors and
// the like: a client's doing, not ours) at debug level.
type fastLogger struct{ l *slog.Logger }

func (f fastLogger) Printf(format string, args ...any) {
	if f.l.Enabled(context.Background(), slog.LevelDebug) {
		f.l.Debug("http: " + fmt.Sprintf(format, args...))
	}
}
