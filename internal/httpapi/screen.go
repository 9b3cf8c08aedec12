package httpapi

import (
	"bytes"
	"net/http"

	"github.com/postbackhq/postback/internal/config"
)

// An intake route is screened by its headers before any of its body is
// read: the key, the Content-Type and the announced length. A client
// refused on them costs no memory for its body and, with Expect:
// 100-continue, is never asked to send it.

// headers is what screening reads of a request.
type headers interface {
	header(name string) string
	// headerCount is how many times the request carries header name.
	headerCount(name string) int
	// contentLength is the announced body length: -1 for a chunked body,
	// 0 for none.
	contentLength() int64
}

// intakeRoute is a route that takes events.
type intakeRoute struct {
	// accepts reports whether the route takes a body of Content-Type ct.
	accepts func(ct string) bool
	// wants says what accepts takes, for a 415.
	wants string
	// post reads the body of a request that passed screening and stores
	// its events.
	post func(s *Server, x exchange, cfg *config.Config)
}

var (
	eventsRoute = &intakeRoute{isJSON, "Content-Type must be application/json, in UTF-8", (*Server).postEvent}
	batchRoute  = &intakeRoute{
		func(ct string) bool { return isNDJSON(ct) || isJSON(ct) },
		"Content-Type must be application/json or application/x-ndjson, in UTF-8",
		(*Server).postBatch,
	}
)

// intakeRouteOf is the intake route of a request, nil for other routes.
// path is the path as sent, as net/http's mux matches it (//v1/./events
// is not /v1/events).
func intakeRouteOf(method, path []byte) *intakeRoute {
	if string(method) != http.MethodPost {
		return nil
	}
	switch string(path) {
	case "/v1/events":
		return eventsRoute
	case "/v1/events/batch":
		return batchRoute
	}
	return nil
}

// requestPath is the path of a request target as sent (RFC 9112 §3.2):
// of origin form (/v1/events?q) or absolute form (http://host/v1/events).
func requestPath(target []byte) []byte {
	if len(target) > 0 && target[0] != '/' {
		_, rest, ok := bytes.Cut(target, []byte("://"))
		if !ok {
			return target // asterisk or authority form: no route of ours
		}
		i := bytes.IndexAny(rest, "/?#")
		if i < 0 || rest[i] != '/' {
			return []byte("/")
		}
		target = rest[i:]
	}
	if i := bytes.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	return target
}

// refusal is why a request is answered from its headers alone.
type refusal uint8

const (
	admitted       refusal = iota
	refusedKey             // 401: no valid key
	refusedType            // 415: a Content-Type the route does not take
	refusedSize            // 413: announces more than api.max_body_bytes
	refusedVersion         // 505: not HTTP/1.x (on Serve; net/http refuses it itself)
)

// screen checks the headers of a request to route r.
func (s *Server) screen(h headers, r *intakeRoute, cfg *config.Config) refusal {
	switch {
	case !s.keyValid(h, cfg.API.Keys):
		return refusedKey
	case !r.accepts(h.header("Content-Type")):
		return refusedType
	case h.contentLength() > cfg.API.MaxBodyBytes:
		return refusedSize
	}
	return admitted
}

// refuse answers refusal why to a request to route r (nil: not an intake
// route), leaving its body unread.
func (s *Server) refuse(x exchange, r *intakeRoute, why refusal) {
	x.leaveBody()
	switch why {
	case refusedKey:
		x.setHeader("WWW-Authenticate", `Bearer realm="postback"`)
		writeError(x, http.StatusUnauthorized, "unauthorized", "missing or wrong API key (send one header Authorization: Bearer <key>)", "")
	case refusedType:
		writeError(x, http.StatusUnsupportedMediaType, "unsupported_media_type", r.wants, "")
	case refusedSize:
		writeError(x, http.StatusRequestEntityTooLarge, "body_too_large", errTooLarge.Error(), "")
	case refusedVersion:
		writeError(x, http.StatusHTTPVersionNotSupported, "unsupported_http_version", "HTTP/1.1 or HTTP/1.0 only", "")
	}
}
