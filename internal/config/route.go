package dispatcher

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/postbackhq/postback/templates"
)

// DeliveryID is the stable id of the delivery of event eventID to partner
// partnerID: "dlv_" and 32 hex digits of SHA-256 over both. Retries and
// replays keep it, so partners can de-duplicate on it.
func DeliveryID(eventID, partnerID string) string {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(partnerID))
	var sum [sha256.Size]byte
	return "dlv_" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// Route is one partner an event goes to.
type Route struct {
	Partner    *Partner
	DeliveryID string
	// Skip is why the delivery will not be sent ("when: condition is
	// false"); empty when it will be.
	Skip string
}

// Routes returns the partners that hear about ev, in config order: enabled,
// listing its name, attributed to them unless they match all, and whose
// `when` holds (a false or failing condition gives a skipped route).
func Routes(partners []*Partner, ev *Event) []Route {
	var routes []Route
	for _, p := range partners {
		if !p.Enabled || !p.wantsName(ev.Name) {
			continue
		}
		if p.Match == MatchAttributed && ev.Attribution.Partner != p.ID {
			continue
		}
		r := Route{Partner: p, DeliveryID: DeliveryID(ev.ID, p.ID)}
		if p.When != nil {
			var v templates.Values
			p.Values(&v, ev, r.DeliveryID, 0)
			ok, err := p.When.Eval(conditionVars(&v))
			switch {
			case err != nil:
				r.Skip = err.Error()
			case !ok:
				r.Skip = "when: condition is false"
			}
		}
		routes = append(routes, r)
	}
	return routes
}
