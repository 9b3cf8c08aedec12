package event

import (
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Warning is an optional field that intake dropped from an event: its
// value had no form intake could use, even once normalised, so the event
// was stored without it. It names the field, never the value, so that a
// warning can be logged without the personal data it was about.
type Warning struct {
	// Field is the dropped field, dotted as in FieldError: "user.email".
	Field string `json:"field"`
	// Message says what was wrong with it: "not an email address; dropped".
	Message string `json:"message"`
}

// Normalize puts the event's identifiers in the form partners match on,
// then checks those that have a fixed form. Call it on an event that
// Validate accepts, as intake does before routing: what is stored, routed
// and rendered is the normalised event.
//
// Surrounding white space is trimmed from the identifiers: app_id,
// click_id, attribution.partner and the attribution ids (campaign_id,
// adgroup_id, creative_id, site_id), the device ids, device.ip,
// device.country, user.customer_user_id, user.email, transaction_id and
// status. Then status is lowercased, user.email is
// lowercased, device.idfa and device.idfv are upper-cased, device.gaid is
// lowercased and device.country upper-cased. The event id and name are
// not touched: Validate refuses them as sent.
//
// A field that is then still not in its form (an email that is not an
// address, a device id that is not a UUID, an IP that does not parse, a
// country that is not two letters A–Z, a click or install time that is
// not RFC 3339) is dropped, set to "", and named in one Warning each
// (device.idfa, idfv, gaid, ip, country, user.email, then
// attribution.click_time and install_time, which are otherwise put in UTC): a conversion is never refused over the form of an optional
// field. With strict, the first such field is refused instead, with a
// *FieldError, and the event is left as it was.
func (e *Event) Normalize(strict bool) ([]Warning, error) {
	// Normalised in a copy, kept only if the event is accepted.
	n := *e
	for _, p := range [...]*string{
		&n.AppID, &n.ClickID, &n.Attribution.Partner, &n.Attribution.CampaignID,
		&n.Attribution.AdgroupID, &n.Attribution.CreativeID, &n.Attribution.SiteID,
		&n.Device.AndroidID, &n.User.CustomerUserID, &n.TransactionID,
	} {
		*p = strings.TrimSpace(*p)
	}
	n.Status = strings.ToLower(strings.TrimSpace(n.Status))
	d, u := &n.Device, &n.User
	u.Email = toCase(strings.TrimSpace(u.Email), strings.ToLower)
	d.IDFA = toCase(strings.TrimSpace(d.IDFA), strings.ToUpper)
	d.IDFV = toCase(strings.TrimSpace(d.IDFV), strings.ToUpper)
	d.GAID = toCase(strings.TrimSpace(d.GAID), strings.ToLower)
	d.IP = strings.TrimSpace(d.IP)
	d.Country = toCase(strings.TrimSpace(d.Country), strings.ToUpper)

	c := formCheck{strict: strict}
	c.check("device.idfa", &d.IDFA, e.Device.IDFA, &uuidForm)
	c.check("device.idfv", &d.IDFV, e.Device.IDFV, &uuidForm)
	c.check("device.gaid", &d.GAID, e.Device.GAID, &uuidForm)
	c.check("device.ip", &d.IP, e.Device.IP, &ipForm)
	c.check("device.country", &d.Country, e.Device.Country, &countryForm)
	c.check("user.email", &u.Email, e.User.Email, &emailForm)
	c.time("attribution.click_time", &n.Attribution.ClickTime)
	c.time("attribution.install_time", &n.Attribution.InstallTime)
	if c.err != nil {
		return nil, c.err
	}
	*e = n
	return c.warnings, nil
}

// formCheck checks the fields of one event that have a form. A method
// called per field, rather than a loop over a table of pointers into the
// copy, lets the copy stay on the stack: the loop moved it to the heap,
// 664 B an event.
type formCheck struct {
	strict   bool
	warnings []Warning
	err      error // strict's refusal, of the first field out of its form
}

// check drops *v, normalised, when it is not in form f, or refuses it as
// sent under strict.
func (c *formCheck) check(field string, v *string, sent string, f *form) {
	if *v == "" || f.ok(*v) || c.err != nil {
		return
	}
	if c.strict {
		c.err = &FieldError{field, fmt.Sprintf("%.48q is not %s", sent, f.like)}
		return
	}
	*v = ""
	c.warnings = append(c.warnings, Warning{field, "not " + f.name + "; dropped"})
}

// time puts the RFC 3339 time *v in UTC, in the form {timestamp} has
// (2026-11-25T18:31:21Z, with a fraction of a second when it has one), or
// drops it, or refuses it under strict, when it is not a time.
func (c *formCheck) time(field string, v *string) {
	sent := *v
	s := strings.TrimSpace(sent)
	if s == "" || c.err != nil {
		*v = s
		return
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil {
		*v = t.UTC().Format(time.RFC3339Nano)
		return
	}
	if c.strict {
		c.err = &FieldError{field, fmt.Sprintf("%.48q is not an RFC 3339 time like 2026-11-25T18:31:21Z", sent)}
		return
	}
	*v = ""
	c.warnings = append(c.warnings, Warning{field, "not an RFC 3339 time; dropped"})
}

// form is the fixed form of an identifier.
type form struct {
	ok func(string) bool
	// name is what the value is not, in a warning; like says it with an
	// example, in a refusal.
	name, like string
}

var (
	uuidForm = form{isUUID, "a UUID", "a UUID like 6D92078A-8246-4BA4-AE5B-76104861E7DC"}
	ipForm   = form{func(s string) bool {
		_, err := netip.ParseAddr(s)
		return err == nil
	}, "an IPv4 or IPv6 address", "an IPv4 or IPv6 address"}
	countryForm = form{func(s string) bool { return isUpper(s, 2) }, "an ISO 3166-1 alpha-2 code", "an ISO 3166-1 alpha-2 code like US"}
	// An address alone, no display name or comment. Lowercasing can
	// lengthen a few characters, so the length is checked again.
	emailForm = form{func(s string) bool {
		if len(s) > maxValueLen {
			return false
		}
		a, err := mail.ParseAddress(s)
		return err == nil && a.Address == s
	}, "an email address", "an email address like a@example.com"}
)

// toCase maps s with to, unless s is not valid UTF-8: strings' case
// mappings replace invalid bytes with U+FFFD, and an event is stored as
// sent or refused (Validate refuses invalid UTF-8), never repaired.
func toCase(s string, to func(string) string) string {
	if !utf8.ValidString(s) {
		return s
	}
	return to(s)
}
