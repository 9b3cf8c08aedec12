package dispatcher

import "github.com/postbackhq/postback/internal/event"

type (
	Event       = event.Event
	Attribution = event.Attribution
	Device      = event.Device
	User        = event.User
	Revenue     = event.Revenue
	Consent     = event.Consent
	Decimal     = event.Decimal
	FieldError  = event.FieldError
)

var (
	DecodeEvent = event.DecodeEvent
	RawEventID  = event.RawEventID
)
