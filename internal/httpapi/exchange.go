package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// exchange is one request and its answer, whichever HTTP server carries
// it: the intake routes run on net/http (Server.ServeHTTP, for embedding
// the API in a Go program) and on fasthttp (Server.Serve, what `postback
// api` runs), with one implementation.
type exchange interface {
	headers
	context() context.Context
	// body reads the request body, at most limit bytes (a longer one
	// gives errTooLarge), failing when none of it arrives for idle.
	body(limit int64, idle time.Duration) ([]byte, error)
	setHeader(name, value string)
	// leaveBody says the rest of the request body will not be read: the
	// server must neither wait for it before answering nor read it as the
	// next request.
	leaveBody()
	// answer sends status and a JSON body.
	answer(status int, body []byte)
	// gone reports whether the client has hung up, when the server can tell.
	gone() bool
}

// errTooLarge is a request body over api.max_body_bytes.
var errTooLarge = errors.New("request body larger than api.max_body_bytes")

// exactBodyMax is the largest body read into one buffer of its announced
// size, allocated before the body arrives (the usual case: one allocation,
// no copy); a larger body, or one of unknown length, goes into a buffer
// that grows from growBodyFrom as its bytes arrive. Announcing a body thus
// costs at most exactBodyMax before any of it is sent.
const (
	exactBodyMax = 64 << 10
	growBodyFrom = 16 << 10
)

// readAll reads r, a body of announced bytes (-1: unknown), to its end,
// at most limit bytes. progress, when set, is called after a read that
// brought bytes when more are to come.
func readAll(r io.Reader, announced, limit int64, progress func()) ([]byte, error) {
	if announced > limit {
		return nil, errTooLarge
	}
	size := min(int64(growBodyFrom), limit+1) // limit+1: room to see a chunked body pass the limit
	if announced >= 0 && announced <= exactBodyMax {
		size = announced
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			if int64(len(b)) == announced {
				return b, nil
			}
			grown := min(2*int64(cap(b)), limit+1)
			if announced >= 0 {
				grown = min(grown, announced)
			}
			b = slices.Grow(b, int(grown)-len(b))
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		switch {
		case int64(len(b)) > limit:
			return nil, errTooLarge
		case err == io.EOF:
			if announced >= 0 && int64(len(b)) < announced {
				return nil, io.ErrUnexpectedEOF
			}
			return b, nil
		case err != nil:
			return nil, err
		case n > 0 && progress != nil && int64(len(b)) != announced:
			progress()
		}
	}
}

// stdExchange is an exchange on net/http.
type stdExchange struct {
	w http.ResponseWriter
	r *http.Request
}

func (x stdExchange) context() context.Context     { return x.r.Context() }
func (x stdExchange) header(name string) string    { return x.r.Header.Get(name) }
func (x stdExchange) headerCount(name string) int  { return len(x.r.Header.Values(name)) }
func (x stdExchange) contentLength() int64         { return x.r.ContentLength }
func (x stdExchange) setHeader(name, value string) { x.w.Header().Set(name, value) }
func (x stdExchange) gone() bool                   { return x.r.Context().Err() != nil }

// leaveBody closes the connection after the answer: net/http would
// otherwise read up to 256 KiB of what is left before answering, however
// slowly it comes. Its close lingers, so that the answer is not lost to a
// reset from the unread bytes.
func (x stdExchange) leaveBody() {
	if x.r.ContentLength != 0 {
		x.w.Header().Set("Connection", "close")
	}
}

func (x stdExchange) body(limit int64, idle time.Duration) ([]byte, error) {
	// The server's own read timeout, if any, is for the whole request;
	// this one is for the body's progress. A server that cannot set it
	// (ErrNotSupported) keeps its own.
	rc := http.NewResponseController(x.w)
	wait := func() { _ = rc.SetReadDeadline(time.Now().Add(idle)) }
	wait()
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	return readAll(x.r.Body, x.r.ContentLength, limit, wait)
}

func (x stdExchange) answer(status int, body []byte) {
	h := x.w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	x.w.WriteHeader(status)
	_, _ = x.w.Write(body)
}

// fastExchange is an exchange on fasthttp.
type fastExchange struct{ c *fasthttp.RequestCtx }

// context is not the request's: fasthttp cancels none (see gone).
func (x fastExchange) context() context.Context { return context.Background() }
func (x fastExchange) header(name string) string {
	return fastHeaders{&x.c.Request.Header}.header(name)
}
func (x fastExchange) headerCount(name string) int {
	return fastHeaders{&x.c.Request.Header}.headerCount(name)
}
func (x fastExchange) contentLength() int64         { return fastHeaders{&x.c.Request.Header}.contentLength() }
func (x fastExchange) setHeader(name, value string) { x.c.Response.Header.Set(name, value) }

// gone is always false: fasthttp does not watch an idle request's
// connection.
func (x fastExchange) gone() bool { return false }

// leaveBody leaves the rest of the body to fasthttp, which reads and drops
// up to 256 KiB of it after the answer, within the body's read deadline,
// or else closes the connection. (A body Serve's screening leaves unread
// is announced as none, its connection closing after the answer.)
func (x fastExchange) leaveBody() {}

// body reads the request's body stream: Serve streams every body, having
// read at most 8 KiB of it under Config.BodyTimeout (see Serve).
func (x fastExchange) body(limit int64, idle time.Duration) ([]byte, error) {
	if !x.c.Request.IsBodyStream() {
		return nil, nil // no body
	}
	wait := func() { _ = x.c.SetReadDeadline(time.Now().Add(idle)) }
	return readAll(x.c.RequestBodyStream(), x.contentLength(), limit, wait)
}

func (x fastExchange) answer(status int, body []byte) {
	x.c.SetStatusCode(status)
	x.c.SetContentType("application/json")
	x.c.SetBody(body)
}

// fastHeaders are the headers of a fasthttp request, which Serve screens
// as soon as they are read.
type fastHeaders struct{ h *fasthttp.RequestHeader }

func (f fastHeaders) header(name string) string   { return string(f.h.Peek(name)) }
func (f fastHeaders) headerCount(name string) int { return len(f.h.PeekAll(name)) }

func (f fastHeaders) contentLength() int64 {
	switch n := f.h.ContentLength(); {
	case n >= 0, n == -1: // -1: chunked
		return int64(n)
	default: // -2: no body
		return 0
	}
}
