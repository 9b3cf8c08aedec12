package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/postbackhq/postback/templates"
)

// Bounds of a partner's delay.
const (
	MinDelay = time.Second
	MaxDelay = 24 * time.Hour
)

// DefaultDedupKeyWindow is how long a dedup key is remembered when the
// partner's dedup sets no window: a month, the usual payout cycle.
const DefaultDedupKeyWindow = 720 * time.Hour

// Lifecycle is what a partner asks of a conversion's lifecycle: the order
// of its deliveries, a hold before each first attempt, a window after the
// click, and a guard against paying one conversion twice. The zero value
// asks nothing.
type Lifecycle struct {
	// OrderBy is the macro (FieldClickID or FieldTransactionID) whose
	// value orders the partner's deliveries: those with the same value
	// are attempted in the order their events were accepted. 0: none.
	OrderBy templates.Field
	// Delay holds each delivery this long before its first attempt.
	Delay time.Duration
	// CancelOnReject: a rejected event for a transaction_id whose earlier
	// deliveries are still held cancels them and itself; nothing is sent.
	CancelOnReject bool
	// Window skips events more than this after their click (else
	// install) time. 0: no window.
	Window time.Duration
	// Dedup, when set, skips a delivery whose rendered key was delivered,
	// or is being attempted, by another delivery.
	Dedup *Dedup
}

// Dedup is a partner's payout guard.
type Dedup struct {
	Key    *templates.Template // rendered as text, from the delivery's macro values
	Window time.Duration       // how long a delivered key is remembered
}

// The skip reasons the lifecycle rules give, as records, stats and
// metrics name them.
const (
	ReasonOutsideWindow      = "outside_window"
	ReasonDuplicate          = "duplicate_conversion"
	ReasonRejectedBeforeSend = "rejected_before_send"
)

// OrderValue is the value that orders ev's deliveries to p, "" when p
// orders none or ev has none.
func (p *Partner) OrderValue(v *templates.Values) string {
	if p == nil || p.OrderBy == 0 {
		return ""
	}
	return v.Get(p.OrderBy)
}

// OutsideWindow says why the event at t, whose click and install times
// v holds, is outside p's window, "" when it is not (or either time is
// unknown: such an event is sent).
func (p *Partner) OutsideWindow(v *templates.Values, t time.Time) string {
	if p.Window <= 0 {
		return ""
	}
	ref, what := v.Get(templates.FieldClickTime), "click"
	if ref == "" {
		ref, what = v.Get(templates.FieldInstallTime), "install"
	}
	at, err := time.Parse(time.RFC3339Nano, ref)
	if ref == "" || err != nil {
		return ""
	}
	if since := t.Sub(at); since > p.Window {
		return fmt.Sprintf("%s: %s after the %s, window %s", ReasonOutsideWindow,
			ShortDuration(since.Truncate(time.Second)), what, ShortDuration(p.Window))
	}
	return ""
}

// DedupKey renders p's dedup key from v, "" when p has none or the key
// renders empty (nothing to guard on).
func (p *Partner) DedupKey(v *templates.Values) (string, error) {
	if p == nil || p.Dedup == nil {
		return "", nil
	}
	return p.Dedup.Key.Render(v)
}

// lifecycleKeys are the partner keys lifecycle reads.
func (l *loader) lifecycleKey(p *Partner, key string, v *yaml.Node) {
	id := p.ID
	switch key {
	case "order_by":
		l.remember(id, key, v)
		s, _ := l.str(v, id, key)
		switch s {
		case "click_id":
			p.OrderBy = templates.FieldClickID
		case "transaction_id":
			p.OrderBy = templates.FieldTransactionID
		default:
			l.errf(v, id, key, "%q: want click_id or transaction_id", s)
		}
	case "delay":
		l.remember(id, key, v)
		d := l.duration(v, id, key)
		if d != 0 && (d < MinDelay || d > MaxDelay) {
			l.errf(v, id, key, "%s: want 1s to 24h", ShortDuration(d))
		}
		p.Delay = d
	case "cancel_on_reject":
		l.remember(id, key, v)
		p.CancelOnReject = l.boolean(v, id, key)
	case "window":
		p.Window = l.duration(v, id, key)
	case "dedup":
		l.remember(id, key, v)
		d := &Dedup{Window: DefaultDedupKeyWindow}
		var keyNode *yaml.Node
		l.mapping(v, id, key, func(k string, kn, kv *yaml.Node) {
			switch k {
			case "key":
				keyNode = kv
				src, _ := l.str(kv, id, "dedup.key")
				if strings.TrimSpace(src) == "" {
					l.errf(kv, id, "dedup.key", "empty: want a template such as \"{click_id}:{event}:{transaction_id}\"")
					return
				}
				if !l.intakeOnly {
					d.Key = l.template(kv, src, id, "dedup.key", templates.ContextText)
				}
			case "window":
				d.Window = l.duration(kv, id, "dedup.window")
			default:
				l.unknownKey(kn, id, "dedup."+k, k, []string{"key", "window"})
			}
		})
		if keyNode == nil {
			l.errf(v, id, "dedup.key", "required: a template such as \"{click_id}:{event}:{transaction_id}\"")
		}
		if d.Key != nil {
			p.Dedup = d
		}
	}
}

// checkLifecycle checks what a partner's lifecycle keys ask of each other.
func (l *loader) checkLifecycle(n *yaml.Node, p *Partner) {
	if p.CancelOnReject && p.Delay == 0 {
		l.errf(l.node(p.ID, "cancel_on_reject", n), p.ID, "cancel_on_reject",
			"needs a delay: a rejection can only cancel a delivery that is still held (set delay, for example 5m)")
	}
}

// lifecycleKeyNames are the keys lifecycleKey reads.
var lifecycleKeyNames = []string{"order_by", "delay", "cancel_on_reject", "window", "dedup"}

// partnerKeyNames are every key of a partner, for suggestions.
var partnerKeyNames = append([]string{"id", "enabled", "events", "match", "when", "require", "method", "url",
	"headers", "body", "content_type", "signing", "timeout", "retry", "rate_limit", "concurrency", "success",
	"privacy", "responses", "propagate_trace", "auto_pause"}, lifecycleKeyNames...)

// unknownKey refuses key, suggesting the closest of known.
func (l *loader) unknownKey(k *yaml.Node, partner, field, key string, known []string) {
	if s, ok := templates.Suggest(key, known); ok {
		l.errf(k, partner, field, "unknown key (did you mean %s?)", s)
		return
	}
	l.errf(k, partner, field, "unknown key (want %s)", orList(known))
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
