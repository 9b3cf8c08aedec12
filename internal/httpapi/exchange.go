package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/valyala/fasthttp"
)

// exchange is one request and its answer, whichever HTTP server carries
// it: the intake routes run on net/http (Server.ServeHTTP, for embedding
// the API in a Go program) and on fasthttp (Server.Serve, what `postback
// api` runs), with one implementation.
type exchange interface {
	context() context.Context
	header(name string) string
	// headerCount is how many times the request carries header name.
	headerCount(name string) int
	// body reads the request body, at most limit bytes; a longer one
	// gives errTooLarge.
	body(limit int64) ([]byte, error)
	setHeader(name, value string)
	// answer sends status and a JSON body.
	answer(status int, body []byte)
	// gone reports whether the client has hung up, when the server can tell.
	gone() bool
}

// errTooLarge is a request body over api.max_body_bytes.
var errTooLarge = errors.New("request body larger than api.max_body_bytes")

// exactBodyMax is the largest body read into a buffer allocated up front.
const exactBodyMax = 64 << 10

// stdExchange is an exchange on net/http.
type stdExchange struct {
	w http.ResponseWriter
	r *http.Request
}

func (x stdExchange) context() context.Context     { return x.r.Context() }
func (x stdExchange) header(name string) string    { return x.r.Header.Get(name) }
func (x stdExchange) headerCount(name string) int  { return len(x.r.Header.Values(name)) }
func (x stdExchange) setHeader(name, value string) { x.w.Header().Set(name, value) }
func (x stdExchange) gone() bool                   { return x.r.Context().Err() != nil }

func (x stdExchange) body(limit int64) ([]byte, error) {
	if n := x.r.ContentLength; n > 0 && n <= min(limit, exactBodyMax) {
		// The usual case: read exactly what the client announced, into
		// one buffer of that size (net/http refuses a body that does not
		// match its Content-Length). Only for small bodies: a client
		// announcing a large one gets memory as its bytes arrive.
		b := make([]byte, n)
		_, err := io.ReadFull(x.r.Body, b)
		return b, err
	}
	b, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, limit))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, errTooLarge
	}
	return b, err
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
	return string(x.c.Request.Header.Peek(name))
}
func (x fastExchange) headerCount(name string) int  { return len(x.c.Request.Header.PeekAll(name)) }
func (x fastExchange) setHeader(name, value string) { x.c.Response.Header.Set(name, value) }

// gone is always false: fasthttp does not watch an idle request's
// connection.
func (x fastExchange) gone() bool { return false }

// body reads the request's body stream (Serve streams every body, so
// that api.max_body_bytes, which a reload can change, is the limit).
func (x fastExchange) body(limit int64) ([]byte, error) {
	if !x.c.Request.IsBodyStream() {
		return nil, nil // no body: Serve streams every one
	}
	stream := x.c.RequestBodyStream()
	switch n := int64(x.c.Request.Header.ContentLength()); {
	case n > limit:
		return nil, errTooLarge // the server drains or drops the rest
	case n >= 0:
		b := make([]byte, n)
		_, err := io.ReadFull(stream, b)
		return b, err
	}
	// Chunked: no length to trust.
	b, err := io.ReadAll(io.LimitReader(stream, limit+1))
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, err
}

func (x fastExchange) answer(status int, body []byte) {
	x.c.SetStatusCode(status)
	x.c.SetContentType("application/json")
	x.c.SetBody(body)
}
