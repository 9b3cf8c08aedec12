package event

import (
	"errors"
	"fmt"
	"strings"
)

// SubjectKind is the identifier an erasure names its user by.
type SubjectKind string

// The identifiers an erasure can name a user by.
const (
	SubjectCustomerUserID SubjectKind = "customer_user_id"
	SubjectEmail          SubjectKind = "email"
	SubjectDeviceID       SubjectKind = "device_id"
)

// Subject is the user an erasure is about: one identifier, normalised as
// intake normalises it, so that it matches the stored events.
type Subject struct {
	Kind  SubjectKind
	Value string
}

// NewSubject normalises value as intake does for kind: trimmed, an email
// lowercased. A device id is trimmed only: its case depends on its kind
// (IDFA and IDFV upper, GAID lower), which Matches applies per field.
func NewSubject(kind SubjectKind, value string) (Subject, error) {
	v := strings.TrimSpace(value)
	switch kind {
	case SubjectCustomerUserID, SubjectDeviceID:
	case SubjectEmail:
		v = toCase(v, strings.ToLower)
	default:
		return Subject{}, fmt.Errorf("unknown identifier %q (want customer_user_id, email or device_id)", kind)
	}
	if v == "" {
		return Subject{}, errors.New(string(kind) + ": empty")
	}
	if len(v) > maxValueLen {
		return Subject{}, fmt.Errorf("%s: longer than %d bytes", kind, maxValueLen)
	}
	return Subject{Kind: kind, Value: v}, nil
}

// Matches reports whether e is one of the subject's events.
func (s Subject) Matches(e *Event) bool {
	switch s.Kind {
	case SubjectCustomerUserID:
		return e.User.CustomerUserID == s.Value
	case SubjectEmail:
		return e.User.Email == s.Value
	case SubjectDeviceID:
		d := &e.Device
		up, low := toCase(s.Value, strings.ToUpper), toCase(s.Value, strings.ToLower)
		return (d.IDFA != "" && d.IDFA == up) || (d.IDFV != "" && d.IDFV == up) ||
			(d.GAID != "" && d.GAID == low) || (d.AndroidID != "" && d.AndroidID == s.Value)
	}
	return false
}

// Identifiers returns the event's identifiers that name one user: the
// customer user id, the email and the device ids, those set.
func (e *Event) Identifiers() []string {
	var out []string
	for _, v := range [...]string{e.User.CustomerUserID, e.User.Email, e.Device.IDFA, e.Device.IDFV, e.Device.GAID, e.Device.AndroidID} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// PersonalValues returns every personal value of the event: its
// identifiers, its IP address and its user agent, those set.
func (e *Event) PersonalValues() []string {
	out := e.Identifiers()
	for _, v := range [...]string{e.Device.IP, e.Device.UserAgent} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Erase removes the event's personal fields in place: the device ids, IP
// address, user agent, email and customer user id, and any params value
// that equals one of them. Everything else (name, revenue, campaign,
// consent…) stays, so a pending delivery still goes out, without them, as
// for a partner whose consent the user did not give.
func (e *Event) Erase() {
	personal := e.PersonalValues()
	d, u := &e.Device, &e.User
	d.IDFA, d.IDFV, d.GAID, d.AndroidID, d.IP, d.UserAgent = "", "", "", "", "", ""
	u.Email, u.CustomerUserID = "", ""
	for k, v := range e.Params {
		for _, p := range personal {
			if strings.EqualFold(strings.TrimSpace(v), p) {
				e.Params[k] = ""
				break
			}
		}
	}
}
