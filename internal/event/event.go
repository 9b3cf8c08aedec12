package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postbackhq/postback/templates"
)

// Event is one conversion reported by an app backend.
type Event struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Timestamp time.Time `json:"timestamp"`
	AppID     string    `json:"app_id,omitempty"`
	ClickID   string    `json:"click_id,omitempty"`
	// TransactionID is the conversion's id in the app's own system (an
	// order or receipt id): a status update of a conversion is a new
	// event with the same TransactionID and a new Status.
	TransactionID string `json:"transaction_id,omitempty"`
	// Status is the conversion's state: StatusApproved (also when
	// empty), StatusPending or StatusRejected.
	Status      string            `json:"status,omitempty"`
	Attribution Attribution       `json:"attribution,omitzero"`
	Device      Device            `json:"device,omitzero"`
	User        User              `json:"user,omitzero"`
	Revenue     Revenue           `json:"revenue,omitzero"`
	Consent     Consent           `json:"consent,omitzero"`
	Params      map[string]string `json:"params,omitempty"`
}

// Attribution says which partner and campaign earned the conversion.
type Attribution struct {
	Partner    string `json:"partner,omitempty"`
	CampaignID string `json:"campaign_id,omitempty"`
	Campaign   string `json:"campaign,omitempty"`
	AdgroupID  string `json:"adgroup_id,omitempty"`
	Adgroup    string `json:"adgroup,omitempty"`
	CreativeID string `json:"creative_id,omitempty"`
	Creative   string `json:"creative,omitempty"`
	SiteID     string `json:"site_id,omitempty"`
	Sub1       string `json:"sub1,omitempty"`
	Sub2       string `json:"sub2,omitempty"`
	Sub3       string `json:"sub3,omitempty"`
	Sub4       string `json:"sub4,omitempty"`
	Sub5       string `json:"sub5,omitempty"`
	// ClickTime and InstallTime are RFC 3339 times, in UTC once
	// normalised: when the attributed click and the install happened.
	ClickTime   string `json:"click_time,omitempty"`
	InstallTime string `json:"install_time,omitempty"`
}

// The conversion statuses an event's Status can hold.
const (
	StatusApproved = "approved"
	StatusPending  = "pending"
	StatusRejected = "rejected"
)

// ConversionStatus is the event's status, StatusApproved when it has none.
func (e *Event) ConversionStatus() string {
	if e.Status == "" {
		return StatusApproved
	}
	return e.Status
}

// Rejected reports whether the event reports its conversion rejected.
func (e *Event) Rejected() bool { return e.Status == StatusRejected }

// Device holds the device identifiers and context of the conversion.
type Device struct {
	IDFA      string `json:"idfa,omitempty"`
	IDFV      string `json:"idfv,omitempty"`
	GAID      string `json:"gaid,omitempty"`
	AndroidID string `json:"android_id,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	OS        string `json:"os,omitempty"`
	OSVersion string `json:"os_version,omitempty"`
	Country   string `json:"country,omitempty"`
}

// User identifies the app's user.
type User struct {
	CustomerUserID string `json:"customer_user_id,omitempty"`
	Email          string `json:"email,omitempty"`
}

// Revenue is the conversion's value. Amount is a decimal kept as text, never
// a float, so "0.10" reaches partners as "0.10".
type Revenue struct {
	Amount   Decimal `json:"amount,omitempty"`
	Currency string  `json:"currency,omitempty"`
}

// Consent records whether the user agreed to sharing their identifiers.
type Consent struct {
	Granted *bool `json:"granted,omitempty"`
}

// IsGranted reports whether consent was explicitly granted.
func (c Consent) IsGranted() bool { return c.Granted != nil && *c.Granted }

// Decimal is a decimal number kept as its text. It accepts a JSON string or
// number and refuses anything else.
type Decimal string

// isDecimal reports whether s matches -?(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?
// (checked against that regexp in TestShapes).
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(s, ".")
	switch {
	case whole == "" || len(whole) > 18 || !allBytes(whole, isDigit):
		return false
	case len(whole) > 1 && whole[0] == '0':
		return false
	case dot && (frac == "" || len(frac) > 12 || !allBytes(frac, isDigit)):
		return false
	}
	return true
}

// UnmarshalJSON accepts "1.99", 1.99 and null.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*d = ""
		return nil
	}
	if len(s) > 0 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*d = ""
			return nil
		}
	}
	if !isDecimal(s) {
		return &FieldError{"revenue.amount", fmt.Sprintf("%.40q is not a decimal number like 1.99", s)}
	}
	*d = Decimal(s)
	return nil
}

// MarshalJSON writes the decimal as a JSON string, so no reader turns it
// into a float.
func (d Decimal) MarshalJSON() ([]byte, error) { return json.Marshal(string(d)) }

// paramsJSON is the free-form part of an event. Values may be sent as
// strings, numbers or booleans; they are kept as strings.
type paramsJSON map[string]string

func (p *paramsJSON) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &FieldError{"params", "must be an object of strings"}
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch {
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return &FieldError{"params." + truncate(k, 64), err.Error()}
			}
			out[k] = s
		case string(v) == "true" || string(v) == "false":
			out[k] = string(v)
		case string(v) == "null":
		default:
			if _, err := strconv.ParseFloat(string(v), 64); err != nil {
				return &FieldError{"params." + truncate(k, 64), "must be a string, number or boolean"}
			}
			out[k] = string(v)
		}
	}
	*p = out
	return nil
}

// FieldError is a refused event: Field names the offending field in JSON
// dotted form ("device.idfa"), Message says what is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Limits on an event's fields. Lengths are in bytes of UTF-8, not in
// characters: "é" is two.
const (
	maxIDLen     = 128
	maxValueLen  = 1024
	maxParams    = 64
	maxParamKey  = templates.MaxParamKey
	maxParamsLen = 8192
)

// The shapes of an event's fixed-format fields. Each matches the pattern
// its comment gives; TestShapes checks them against those regexps.

// isName: [a-z0-9_]{1,64}
func isName(s string) bool {
	return len(s) >= 1 && len(s) <= 64 && allBytes(s, func(c byte) bool { return c >= 'a' && c <= 'z' || isDigit(c) || c == '_' })
}

// isParamKey: [A-Za-z0-9_.-]{1,64}
func isParamKey(s string) bool { return templates.IsParamKey(s) }

// isUpper reports whether s is n letters A-Z: [A-Z]{n}
func isUpper(s string, n int) bool {
	return len(s) == n && allBytes(s, func(c byte) bool { return c >= 'A' && c <= 'Z' })
}

// isUUID: [0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isDigit(c) && (c|0x20 < 'a' || c|0x20 > 'f') {
				return false
			}
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allBytes(s string, ok func(byte) bool) bool {
	for i := range len(s) {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// eventJSON mirrors Event for decoding: params with lenient values and a raw
// timestamp so its error names the field.
type eventJSON struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Timestamp     json.RawMessage `json:"timestamp"`
	AppID         string          `json:"app_id"`
	ClickID       string          `json:"click_id"`
	TransactionID string          `json:"transaction_id"`
	Status        string          `json:"status"`
	Attribution   Attribution     `json:"attribution"`
	Device        Device          `json:"device"`
	User          User            `json:"user"`
	Revenue       Revenue         `json:"revenue"`
	Consent       Consent         `json:"consent"`
	Params        paramsJSON      `json:"params"`
}

// DecodeEvent reads one JSON event, refuses unknown fields and validates it
// (Validate). Keys are case-sensitive and each appears at most once in its
// object; every string is valid UTF-8. now fills a missing timestamp.
// Errors are *FieldError. The identifiers are left as sent: intake
// normalises them (Normalize) before it routes the event.
func DecodeEvent(data []byte, now time.Time) (*Event, error) {
	return decodeEvent(data, now, true)
}

// decodeEvent is DecodeEvent; tryFast false leaves out the fast path, so
// that tests can hold one path against the other.
func decodeEvent(data []byte, now time.Time, tryFast bool) (*Event, error) {
	var raw eventJSON
	fast := tryFast && decodeFast(data, &raw)
	if !fast {
		if fe := checkStrict(data); fe != nil {
			return nil, fe
		}
		raw = eventJSON{}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&raw); err != nil {
			return nil, decodeError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, &FieldError{Message: "trailing data after the event object"}
		}
	}
	ev := &Event{
		ID: raw.ID, Name: raw.Name, AppID: raw.AppID, ClickID: raw.ClickID,
		TransactionID: raw.TransactionID, Status: raw.Status,
		Attribution: raw.Attribution, Device: raw.Device, User: raw.User,
		Revenue: raw.Revenue, Consent: raw.Consent, Params: raw.Params,
	}
	if ts := raw.Timestamp; len(ts) > 0 && string(ts) != "null" {
		var s string
		if fast { // a plain string: see fastScan.str
			s = string(ts[1 : len(ts)-1])
		} else if err := json.Unmarshal(ts, &s); err != nil {
			return nil, &FieldError{"timestamp", "must be an RFC 3339 string"}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, &FieldError{"timestamp", fmt.Sprintf("%.64q is not RFC 3339 (like 2026-11-25T18:31:21Z)", s)}
		}
		ev.Timestamp = t.UTC()
	} else {
		ev.Timestamp = now.UTC()
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	return ev, nil
}

// decodeError turns encoding/json's errors into a FieldError naming the field.
func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &FieldError{Message: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se.Error())}
	case errors.As(err, &te):
		field := te.Field
		return &FieldError{Field: field, Message: fmt.Sprintf("must be %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)}
	case errors.Is(err, io.EOF):
		return &FieldError{Message: "empty body: want a JSON event object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Message: "malformed JSON: unexpected end of input"}
	}
	msg := err.Error()
	// checkStrict names unknown keys, with their path, before decoding;
	// this is in case encoding/json finds one it did not.
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &FieldError{Field: strings.Trim(f, `"`), Message: "unknown field (check its spelling; free keys go in params)"}
	}
	// encoding/json returns our UnmarshalJSON errors as they are; they
	// already carry their field.
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe
	}
	return &FieldError{Message: "malformed event: " + msg}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	case "bool":
		return "a boolean"
	case "ptr":
		return "a value"
	}
	return "a number"
}

// Validate checks what intake refuses whatever api.strict says: the id
// and name, the revenue, params, and every string's length and UTF-8. The
// identifiers with a fixed form (device ids, IP, country, email) are
// Normalize's to check, once it has put them in that form.
func (e *Event) Validate() error {
	switch {
	case e.ID == "":
		return &FieldError{"id", "required"}
	case len(e.ID) > maxIDLen:
		return &FieldError{"id", fmt.Sprintf("longer than %d bytes", maxIDLen)}
	case !utf8.ValidString(e.ID):
		return &FieldError{"id", badUTF8}
	case !printable(e.ID):
		return &FieldError{"id", "must not hold an ASCII space or control character"}
	case e.Name == "":
		return &FieldError{"name", "required"}
	case !isName(e.Name):
		return &FieldError{"name", fmt.Sprintf("%.70q must match [a-z0-9_]{1,64}", e.Name)}
	}
	if err := checkStrings(e); err != nil {
		return err
	}
	switch {
	case len(e.TransactionID) > maxIDLen:
		return &FieldError{"transaction_id", fmt.Sprintf("longer than %d bytes", maxIDLen)}
	case !isStatus(e.Status):
		return &FieldError{"status", fmt.Sprintf("%.40q: want approved, pending or rejected", e.Status)}
	}
	if a := string(e.Revenue.Amount); a != "" && !isDecimal(a) {
		return &FieldError{"revenue.amount", fmt.Sprintf("%.40q is not a decimal number like 1.99", a)}
	}
	if c := e.Revenue.Currency; c != "" && !isUpper(c, 3) {
		return &FieldError{"revenue.currency", fmt.Sprintf("%.16q is not an ISO 4217 code like USD", c)}
	}
	if e.Revenue.Currency != "" && e.Revenue.Amount == "" {
		return &FieldError{"revenue.amount", "required when revenue.currency is set"}
	}
	if len(e.Params) > maxParams {
		return &FieldError{"params", fmt.Sprintf("more than %d keys", maxParams)}
	}
	total := 0
	for k, v := range e.Params {
		if !isParamKey(k) {
			return &FieldError{"params." + truncate(k, 64), "key must match [A-Za-z0-9_.-]{1,64}"}
		}
		if !utf8.ValidString(v) {
			return &FieldError{"params." + k, badUTF8}
		}
		total += len(k) + len(v)
	}
	if total > maxParamsLen {
		return &FieldError{"params", fmt.Sprintf("keys and values longer than %d bytes in all", maxParamsLen)}
	}
	return nil
}

// checkStrings bounds every free-text field and requires valid UTF-8.
func checkStrings(e *Event) error {
	fields := [...]struct {
		name, v string
	}{
		{"app_id", e.AppID}, {"click_id", e.ClickID}, {"transaction_id", e.TransactionID},
		{"attribution.partner", e.Attribution.Partner}, {"attribution.campaign_id", e.Attribution.CampaignID},
		{"attribution.campaign", e.Attribution.Campaign}, {"attribution.adgroup_id", e.Attribution.AdgroupID},
		{"attribution.adgroup", e.Attribution.Adgroup}, {"attribution.creative_id", e.Attribution.CreativeID},
		{"attribution.creative", e.Attribution.Creative}, {"attribution.site_id", e.Attribution.SiteID},
		{"attribution.sub1", e.Attribution.Sub1}, {"attribution.sub2", e.Attribution.Sub2},
		{"attribution.sub3", e.Attribution.Sub3}, {"attribution.sub4", e.Attribution.Sub4},
		{"attribution.sub5", e.Attribution.Sub5},
		{"attribution.click_time", e.Attribution.ClickTime}, {"attribution.install_time", e.Attribution.InstallTime},
		{"device.idfa", e.Device.IDFA}, {"device.idfv", e.Device.IDFV}, {"device.gaid", e.Device.GAID},
		{"device.android_id", e.Device.AndroidID}, {"device.ip", e.Device.IP},
		{"device.user_agent", e.Device.UserAgent}, {"device.os", e.Device.OS},
		{"device.os_version", e.Device.OSVersion},
		{"user.customer_user_id", e.User.CustomerUserID}, {"user.email", e.User.Email},
	}
	for _, f := range fields {
		if len(f.v) > maxValueLen {
			return &FieldError{f.name, fmt.Sprintf("longer than %d bytes", maxValueLen)}
		}
		if !utf8.ValidString(f.v) {
			return &FieldError{f.name, badUTF8}
		}
	}
	return nil
}

// isStatus reports whether s, trimmed and in any case, is a conversion
// status, or empty: Normalize then puts it in lower case. A status that
// is none of them is refused whatever api.strict says: read as approved,
// a "declined" would be paid.
func isStatus(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", StatusApproved, StatusPending, StatusRejected:
		return true
	}
	return false
}

// printable reports whether s holds no ASCII space or control character
// (U+0000 to U+0020, U+007F).
func printable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes, at the start of a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := 1; i < utf8.UTFMax && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n]
}

// RawEventID returns the string "id" of a JSON event that may not be
// valid, so that a refusal can name the event; "" when it has none, or
// none DecodeEvent would read as it is: in valid JSON, the key spelled
// "id" once, its value valid UTF-8 without lone surrogates, at most 128
// bytes.
func RawEventID(data []byte) string {
	if !json.Valid(data) {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	id, found := "", false
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ""
		}
		if key != "id" {
			continue
		}
		if found {
			return "" // repeated: neither is the event's id
		}
		found = true
		c := checker{fastScan: fastScan{s: string(v)}}
		s, bad, ok := c.str(true)
		if !ok || bad != "" || len(s) > maxIDLen {
			return ""
		}
		id = s
	}
	return id
}
