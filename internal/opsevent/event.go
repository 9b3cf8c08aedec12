// Package opsevent tells operators what happens to their partners: JSON
// events (partner.failing, partner.recovered, partner.paused,
// partner.resumed, dlq.dead_lettered) posted to the `ops.webhooks` of the
// config, signed with Standard Webhooks as partner postbacks are.
//
// An event is one asynq task per webhook, on a queue of its own
// (QueueOps) that a server of its own in each worker runs: a slow or
// unreachable webhook holds none of the worker's delivery slots and
// delays no postback. Each event has a stable id (the webhook-id header),
// so a receiver can drop repeats, and its task id is derived from it, so
// two workers raising the same event enqueue it once.
package opsevent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// The event types.
const (
	TypeFailing      = "partner.failing"
	TypeRecovered    = "partner.recovered"
	TypePaused       = "partner.paused"
	TypeResumed      = "partner.resumed"
	TypeDeadLettered = "dlq.dead_lettered"
)

// Event is one operational event, as its receivers get it (the JSON body
// of the request). The field names are part of the contract.
type Event struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is what an event says. Partner is always set; the rest depends on
// the type.
type Data struct {
	Partner string `json:"partner"`

	// partner.failing: "circuit_open" or "auto_pause_half_way".
	Cause string `json:"cause,omitempty"`
	// partner.failing (half way) and partner.paused (auto): failures in a
	// row so far, and the auto-pause threshold.
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`
	AutoPauseAfter      int `json:"auto_pause_after,omitempty"`
	// partner.recovered: since when it was failing.
	FailingSince *time.Time `json:"failing_since,omitempty"`

	// partner.paused: the pause, as partners list shows it. By is "cli",
	// "api" or "auto".
	Reason string     `json:"reason,omitempty"`
	By     string     `json:"by,omitempty"`
	Since  *time.Time `json:"since,omitempty"`

	// dlq.dead_lettered: the letters of one minute.
	Count         int               `json:"count,omitempty"`
	Reasons       map[string]int    `json:"reasons,omitempty"`
	RevenueAtRisk map[string]string `json:"revenue_at_risk,omitempty"` // by currency, exact decimals
	From          *time.Time        `json:"from,omitempty"`
	To            *time.Time        `json:"to,omitempty"`
}

// New returns an event of type typ about partner, at now, whose id is
// derived from typ, partner and key (what makes this occurrence unique:
// the start of the pause, of the failing state, of the minute), so that
// every worker and every retry gives it the same id.
func New(typ, partner, key string, now time.Time, d Data) Event {
	d.Partner = partner
	return Event{ID: ID(typ, partner, key), Type: typ, Timestamp: now.UTC(), Data: d}
}

// ID is the stable id of event typ of partner for key: "ope_" and 24 hex
// digits.
func ID(typ, partner, key string) string {
	h := sha256.Sum256([]byte(typ + "\x00" + partner + "\x00" + key))
	return "ope_" + hex.EncodeToString(h[:12])
}

// Body is the event's JSON body.
func (e Event) Body() ([]byte, error) { return json.Marshal(e) }

// ms is a time as the key of an event id.
func ms(t time.Time) string {
	b, _ := json.Marshal(t.UnixMilli())
	return string(b)
}

func at(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}
