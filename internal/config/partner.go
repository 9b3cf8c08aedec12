package config

import (
	"time"

	"github.com/postbackhq/postback/internal/signing"
	"github.com/postbackhq/postback/retry"
	"github.com/postbackhq/postback/templates"
)

// Match says which events of a partner's event names it hears about.
type Match uint8

const (
	// MatchAttributed sends only events attributed to the partner
	// (event.attribution.partner == partner id). The default.
	MatchAttributed Match = iota
	// MatchAll sends every event whose name the partner lists.
	MatchAll
)

func (m Match) String() string {
	if m == MatchAll {
		return "all"
	}
	return "attributed"
}

// Partner is one partner's compiled configuration: every template parsed,
// every condition compiled, every default applied. A Partner is immutable
// once built and shared by all goroutines; a config reload builds new ones.
type Partner struct {
	ID      string
	Enabled bool
	// Events lists the event names sent to the partner; empty means all.
	Events []string
	Match  Match
	// When is an optional condition over the macro values; nil means always.
	When *Condition
	// Require lists macros that must have a value, or the delivery is
	// skipped with the reason.
	Require []Requirement

	Method      string // GET, POST or PUT
	URL         *templates.Template
	Headers     []Header
	Body        *templates.Template // nil for GET
	ContentType string

	// Signer adds Standard Webhooks headers to each request; several
	// secrets give several signatures, for rotation. Nil: unsigned.
	Signer *signing.Signer

	Timeout     time.Duration
	Retry       retry.Policy
	RateLimit   RateLimit
	Concurrency int // in-flight requests per worker process; 0 = no cap
	Success     retry.Success
	// RequireConsent blanks device ids, ip and email unless the event
	// carries consent.granted = true.
	RequireConsent bool

	// AutoPause pauses the partner after that many failed attempts in a
	// row, counted across every worker. Zero: off.
	AutoPause AutoPause
	// Lifecycle: ordering, delay, cancellation, window and payout guard.
	Lifecycle
	// Responses are the partner's `responses:` rules, in order; Success
	// holds them too and tries them first.
	Responses []retry.Rule

	// PropagateTrace sends the attempt's W3C traceparent header to the
	// partner when the worker traces (propagate_trace: true). Default
	// false: a partner learns nothing of postback's traces.
	PropagateTrace bool
}

// Header is one templated request header.
type Header struct {
	Name  string
	Value *templates.Template
}

// RateLimit caps a partner's request rate across every worker process.
// The zero value means no limit.
type RateLimit struct {
	Requests int
	Per      time.Duration
}

// Requirement is one macro that must have a value.
type Requirement struct {
	Field templates.Field // 0 for a param
	Param string
}

func (r Requirement) String() string {
	if r.Field == 0 {
		return "params." + r.Param
	}
	return r.Field.String()
}

// wantsName reports whether the partner hears about events called name.
func (p *Partner) wantsName(name string) bool {
	if len(p.Events) == 0 {
		return true
	}
	for _, e := range p.Events {
		if e == name {
			return true
		}
	}
	return false
}

// Missing returns the first requirement v does not meet, or "".
func (p *Partner) Missing(v *templates.Values) string {
	for _, r := range p.Require {
		var s string
		if r.Field == 0 {
			s, _ = v.Param(r.Param)
		} else {
			s = v.Get(r.Field)
		}
		if s == "" {
			return r.String()
		}
	}
	return ""
}

// AttemptTimeout bounds one attempt to p: its timeout, or the default.
// A nil p (a partner no longer in the config) has the default.
func (p *Partner) AttemptTimeout() time.Duration {
	if p == nil || p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}
