package config

import (
	"net/http"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/version"
	"github.com/postbackhq/postback/templates"
)

// Request is the exact request a delivery sends: rendered, not yet signed.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// RenderError is a template that could not render a delivery's request;
// such a delivery is dead-lettered with reason "render".
type RenderError struct {
	Part string // "url", "body" or "headers.NAME"
	Err  error
}

func (e *RenderError) Error() string { return e.Part + ": " + e.Err.Error() }
func (e *RenderError) Unwrap() error { return e.Err }

// Render builds partner p's request for event ev: the URL, headers and body
// templates rendered with the event's values, plus User-Agent and
// Idempotency-Key. Signing happens per attempt, in Send.
func (p *Partner) Render(ev *event.Event, deliveryID string, attempt int) (*Request, error) {
	var v templates.Values
	p.Values(&v, ev, deliveryID, attempt)
	return p.RenderValues(&v, deliveryID)
}

// RenderValues builds p's request from macro values v (see Values).
func (p *Partner) RenderValues(v *templates.Values, deliveryID string) (*Request, error) {
	u, err := p.URL.Render(v)
	if err != nil {
		return nil, &RenderError{"url", err}
	}
	r := &Request{Method: p.Method, URL: u, Header: make(http.Header, len(p.Headers)+4)}
	for _, h := range p.Headers {
		val, err := h.Value.Render(v)
		if err != nil {
			return nil, &RenderError{"headers." + h.Name, err}
		}
		r.Header.Set(h.Name, val)
	}
	if p.Body != nil {
		b, err := p.Body.Append(nil, v)
		if err != nil {
			return nil, &RenderError{"body", err}
		}
		r.Body = b
		if p.ContentType != "" {
			r.Header.Set("Content-Type", p.ContentType)
		}
	}
	r.Header.Set("User-Agent", "postback/"+version.Version)
	r.Header.Set("Idempotency-Key", deliveryID)
	return r, nil
}
