package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Timeouts of Serve's connections.
const (
	// serveReadTimeout bounds reading one request, body included.
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
func (s *Server) Serve(ln net.Listener) error {
	slow := fasthttpadaptor.NewFastHTTPHandler(s.mux)
	srv := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			x := fastExchange{c}
			if c.IsPost() {
				// The path as sent, as net/http's mux matches it: fasthttp's
				// Path is decoded and normalized (//v1/./events would match).
				switch string(c.URI().PathOriginal()) {
				case "/v1/events":
					s.intake(x, s.postEvent)
					return
				case "/v1/events/batch":
					s.intake(x, s.postBatch)
					return
				}
			}
			if c.Request.IsBodyStream() {
				// fasthttpadaptor would read the whole stream, of any
				// length, before the route (and its key check) runs.
				body, ok := readBody(x, s.cfg.Config.Load().API.MaxBodyBytes)
				if !ok {
					return
				}
				c.Request.SetBodyRaw(body)
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
		// Every body reaches the handler as a stream, which
		// fastExchange.body reads up to api.max_body_bytes (a reload can
		// change it; a server setting could not follow).
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
	err := srv.Serve(ln)
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

// fastError answers a request fasthttp could not read, in the API's error
// shape.
func (s *Server) fastError(c *fasthttp.RequestCtx, err error) {
	x := fastExchange{c}
	var big *fasthttp.ErrSmallBuffer
	switch {
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
