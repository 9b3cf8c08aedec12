package config

import (
	"fmt"
	"strings"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/templates"
)

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
func Routes(partners []*Partner, ev *event.Event) []Route {
	var routes []Route
	for _, p := range partners {
		if p.NotRouted(ev) != "" {
			continue
		}
		r := Route{Partner: p, DeliveryID: wire.DeliveryID(ev.ID, p.ID)}
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

// NotRouted says why ev does not reach p at all ("" when it does): the
// partner is disabled, does not list the event's name, or hears only of
// events attributed to it.
func (p *Partner) NotRouted(ev *event.Event) string {
	switch {
	case !p.Enabled:
		return "partner disabled"
	case !p.wantsName(ev.Name):
		return fmt.Sprintf("event %q is not in events [%s]", ev.Name, strings.Join(p.Events, ", "))
	case p.Match == MatchAttributed && ev.Attribution.Partner != p.ID:
		return fmt.Sprintf("match attributed and attribution.partner is %q, not %q", ev.Attribution.Partner, p.ID)
	}
	return ""
}
