package dispatcher

import (
	"time"

	"github.com/postbackhq/postback/internal/event"
)

// Event is one conversion reported by an app backend. ID and Name are
// required; Timestamp defaults to the time of receipt.
type Event = event.Event

// Attribution, Device, User, Revenue and Consent are an Event's parts.
type (
	Attribution = event.Attribution
	Device      = event.Device
	User        = event.User
	Revenue     = event.Revenue
	Consent     = event.Consent
)

// Decimal is a revenue amount, a decimal string never carried as a float.
type Decimal = event.Decimal

// FieldError is an event refused at intake, naming the field.
type FieldError = event.FieldError

// Warning is an optional field dropped from an accepted event because its
// value was invalid once normalised (Receipt.Warnings); it names the field,
// not the value.
type Warning = event.Warning

// DecodeEvent reads one event in the JSON form of POST /v1/events and
// validates it; now is the timestamp of an event that has none. Its
// identifiers are left as sent: Client.Enqueue normalises them.
func DecodeEvent(data []byte, now time.Time) (*Event, error) { return event.DecodeEvent(data, now) }
