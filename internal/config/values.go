package config

import (
	"strconv"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/templates"
)

// Values fills the macro values of one attempt of delivery deliveryID of
// ev to p. Without consent, a partner that requires it sees no device ids,
// IP address or email (the payload stored for such a delivery never had
// them either).
func (p *Partner) Values(v *templates.Values, ev *event.Event, deliveryID string, attempt int) {
	ev.Values(v, p.personal(ev))
	v.Set(templates.FieldPartner, p.ID)
	v.Set(templates.FieldDeliveryID, deliveryID)
	if attempt > 0 {
		v.Set(templates.FieldAttempt, strconv.Itoa(attempt))
	}
}

// personal reports whether p may see ev's personal identifiers.
func (p *Partner) personal(ev *event.Event) bool { return !p.RequireConsent || ev.Consent.IsGranted() }

// Stored returns ev as it may be stored for p: without consent, a partner
// that requires it gets a copy with no device ids, IP address or email, so
// they are never written to Redis for that delivery.
func (p *Partner) Stored(ev *event.Event) *event.Event {
	if p.personal(ev) {
		return ev
	}
	return ev.WithoutIdentifiers()
}
