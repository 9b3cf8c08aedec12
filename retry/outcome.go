package retry

import (
	"fmt"
	"strconv"
)

// Outcome is what one delivery attempt (or the decision not to make one)
// came to. The zero Outcome is invalid, so a forgotten assignment shows.
type Outcome uint8

// The outcomes. Their strings are the DLQ reasons and the
// `outcome` metric label, so they are part of the product contract.
const (
	Delivered    Outcome = iota + 1 // the partner accepted it (the success rule matched)
	Retry                           // transient failure; try again after a backoff
	Rejected                        // the partner refused it (other 4xx, 3xx); dead-lettered at once
	Blocked                         // the SSRF guard refused the address; dead-lettered at once
	RenderFailed                    // the partner's template failed on this event; dead-lettered at once
	Exhausted                       // max_attempts or max_age reached; dead-lettered
	Deferred                        // rate limit or open circuit; runs later without spending an attempt
	Skipped                         // require not met, when false, or no consent; recorded, never sent
	Duplicate                       // the partner already had it (a responses rule said so); final, like Delivered
)

var outcomeNames = [...]string{
	Delivered:    "delivered",
	Retry:        "retry",
	Rejected:     "rejected",
	Blocked:      "blocked",
	RenderFailed: "render",
	Exhausted:    "exhausted",
	Deferred:     "deferred",
	Skipped:      "skipped",
	Duplicate:    "duplicate",
}

// String returns the outcome's name: "delivered", "retry", "rejected",
// "blocked", "render", "exhausted", "deferred", "skipped" or "duplicate".
func (o Outcome) String() string {
	if o.valid() {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

func (o Outcome) valid() bool { return o >= Delivered && o <= Duplicate }

// DeadLetter reports whether the outcome sends the delivery to the DLQ:
// Rejected, Blocked, RenderFailed and Exhausted.
func (o Outcome) DeadLetter() bool {
	switch o {
	case Rejected, Blocked, RenderFailed, Exhausted:
		return true
	}
	return false
}

// ParseOutcome is the inverse of [Outcome.String].
func ParseOutcome(s string) (Outcome, error) {
	for o := Delivered; o <= Duplicate; o++ {
		if outcomeNames[o] == s {
			return o, nil
		}
	}
	return 0, fmt.Errorf("unknown outcome %q (want delivered, retry, rejected, blocked, render, exhausted, deferred, skipped or duplicate)", s)
}

// MarshalText encodes the outcome as its name, so it reads well in JSON.
func (o Outcome) MarshalText() ([]byte, error) {
	if !o.valid() {
		return nil, fmt.Errorf("invalid outcome %d", uint8(o))
	}
	return []byte(o.String()), nil
}

// UnmarshalText decodes a name written by [Outcome.MarshalText].
func (o *Outcome) UnmarshalText(b []byte) error {
	v, err := ParseOutcome(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}
