package templates

import "time"

// Values is the data of one render: one string per Field, free params and
// the event time. The zero value is ready to use. An empty string means the
// value is absent. A Values may be shared by concurrent renders as long as
// nobody writes to it meanwhile.
type Values struct {
	vals [numFields]string
	t    time.Time

	// Params holds the event's free keys, read by {params.KEY}. SetParam
	// creates the map when it is nil.
	Params map[string]string
}

// Set stores the value of field f; "" marks it absent. An all-zero IDFA or
// GAID (00000000-0000-0000-0000-000000000000, the value iOS and Android
// report when tracking is limited) is stored as absent. Setting
// FieldTimestamp to an RFC 3339 string also sets the event time that the
// time filters read; SetTime is the cheaper way. Set panics on an invalid
// Field, which is a programming error.
func (v *Values) Set(f Field, s string) {
	if !f.valid() {
		panic("templates: Values.Set of invalid " + f.String())
	}
	switch f {
	case FieldIDFA, FieldGAID:
		if isZeroID(s) {
			s = ""
		}
	case FieldTimestamp:
		v.t = time.Time{}
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			v.t = t
		}
	}
	v.vals[f] = s
}

// Get returns the value of field f, "" when absent or when f is invalid.
func (v *Values) Get(f Field) string {
	if !f.valid() {
		return ""
	}
	return v.vals[f]
}

// SetParam stores the free param key, read by {params.key}.
func (v *Values) SetParam(key, val string) {
	if v.Params == nil {
		v.Params = make(map[string]string)
	}
	v.Params[key] = val
}

// Param returns the free param key and whether it is set.
func (v *Values) Param(key string) (string, bool) {
	s, ok := v.Params[key]
	return s, ok
}

// SetTime stores the event time. {timestamp} renders it in UTC as RFC 3339
// (2026-11-25T18:31:21Z); the string is formatted here, once, so that
// rendering it costs nothing. The filters unix, unixms and rfc3339 on
// {timestamp} read t itself, keeping sub-second precision. A zero t clears
// the timestamp.
func (v *Values) SetTime(t time.Time) {
	v.t = t
	if t.IsZero() {
		v.vals[FieldTimestamp] = ""
		return
	}
	v.vals[FieldTimestamp] = t.UTC().Format(time.RFC3339)
}

// Time returns the event time set by SetTime (or by Set of an RFC 3339
// timestamp), the zero time when there is none.
func (v *Values) Time() time.Time { return v.t }

// Reset clears every value, the time and the params (keeping the map's
// storage), so that a pooled Values can be reused.
func (v *Values) Reset() {
	v.vals = [numFields]string{}
	v.t = time.Time{}
	clear(v.Params)
}

// isZeroID reports whether s is an all-zero advertising id: only '0' and
// '-', with at least one '0'.
func isZeroID(s string) bool {
	zero := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '0':
			zero = true
		case '-':
		default:
			return false
		}
	}
	return zero
}
