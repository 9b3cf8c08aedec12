package templates

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

type filterKind uint8

const (
	filterDefault filterKind = iota + 1
	filterLower
	filterUpper
	filterTrim
	filterSHA256
	filterSHA1
	filterMD5
	filterUnix
	filterUnixMS
	filterRFC3339
	filterCents
	filterMap
	filterJSON
	filterRaw
)

type filterSpec struct {
	kind    filterKind
	example string // non-empty: an argument is required, shown like this
}

var filterSpecs = map[string]filterSpec{
	"default": {filterDefault, "default:0"},
	"lower":   {kind: filterLower},
	"upper":   {kind: filterUpper},
	"trim":    {kind: filterTrim},
	"sha256":  {kind: filterSHA256},
	"sha1":    {kind: filterSHA1},
	"md5":     {kind: filterMD5},
	"unix":    {kind: filterUnix},
	"unixms":  {kind: filterUnixMS},
	"rfc3339": {kind: filterRFC3339},
	"cents":   {kind: filterCents},
	"map":     {filterMap, "map:a=1,b=2"},
	"json":    {kind: filterJSON},
	"raw":     {kind: filterRaw},
}

var filterNames = func() []string {
	names := make([]string, 0, len(filterSpecs))
	for n := range filterSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}()

// filter is one parsed filter of a macro.
type filter struct {
	kind    filterKind
	arg     string   // default's value
	from    []string // map keys, parallel to to
	to      []string // map values
	star    string   // map's "*" fallback
	hasStar bool
	// eventTime: a time filter straight on {timestamp} reads Values' time,
	// keeping sub-second precision, instead of parsing the string.
	eventTime bool
	// email: a hash of {email} normalises (trim, lowercase) first, as ad
	// networks match hashed emails.
	email bool
}

// parseFilter parses filter number k of macro m.
func parseFilter(m *node, k int, name, arg string, hasArg bool, off int) (filter, error) {
	spec, ok := filterSpecs[name]
	if !ok {
		msg := "unknown filter " + strconv.Quote(name) + " in " + m.text
		if s, ok := suggest(name, filterNames); ok {
			msg += " (did you mean " + strconv.Quote(s) + "?)"
		}
		return filter{}, errorf(off, msg)
	}
	if spec.example != "" && (!hasArg || arg == "") {
		return filter{}, errorf(off, "filter "+strconv.Quote(name)+" needs an argument like "+spec.example)
	}
	if spec.example == "" && hasArg {
		return filter{}, errorf(off, "filter "+strconv.Quote(name)+" takes no argument, in "+m.text)
	}
	f := filter{kind: spec.kind, arg: arg}
	switch f.kind {
	case filterMap:
		if err := f.parseMap(arg, off+len(name)+1); err != nil {
			return filter{}, err
		}
	case filterUnix, filterUnixMS, filterRFC3339:
		f.eventTime = k == 0 && m.field == FieldTimestamp
	case filterSHA256, filterSHA1, filterMD5:
		f.email = m.field == FieldEmail
	}
	return f, nil
}

// parseMap reads "a=1,b=2,*=0"; off is the argument's offset in the source.
func (f *filter) parseMap(arg string, off int) error {
	for entry := range strings.SplitSeq(arg, ",") {
		from, to, ok := strings.Cut(entry, "=")
		switch {
		case !ok:
			return errorf(off, "filter \"map\" entry "+strconv.Quote(entry)+" needs a value, like map:a=1,b=2")
		case from == "":
			return errorf(off, "filter \"map\" entry "+strconv.Quote(entry)+" has an empty key")
		case from == "*":
			if f.hasStar {
				return errorf(off, "filter \"map\" has two \"*\" fallbacks")
			}
			f.star, f.hasStar = to, true
		default:
			for _, k := range f.from {
				if k == from {
					return errorf(off, "filter \"map\" maps "+strconv.Quote(from)+" twice")
				}
			}
			f.from, f.to = append(f.from, from), append(f.to, to)
		}
		off += len(entry) + 1
	}
	return nil
}

var (
	errNotTime    = errors.New("is not an RFC 3339 time")
	errNotDecimal = errors.New("is not a decimal number")
)

// apply runs the filter on in. Results that need new bytes are written to
// st's scratch; absent ("") stays absent except for default, json.
func (f *filter) apply(st *scratch, field Field, in string, v *Values) (string, error) {
	switch f.kind {
	case filterDefault:
		if in == "" {
			return f.arg, nil
		}
		return in, nil
	case filterTrim:
		return strings.TrimSpace(in), nil
	case filterMap:
		if in == "" {
			return in, nil
		}
		for i, k := range f.from {
			if k == in {
				return f.to[i], nil
			}
		}
		if f.hasStar {
			return f.star, nil
		}
		return in, nil
	case filterRaw:
		return in, nil // the escaper does the work
	case filterJSON:
		b := st.take()
		switch {
		case in == "":
			b = append(b, "null"...)
		case field == FieldRevenue || field == FieldAttempt:
			var ok bool
			if b, ok = appendJSONNumber(b, in); !ok {
				b = appendJSONQuoted(b[:0], in)
			}
		default:
			b = appendJSONQuoted(b, in)
		}
		return st.done(b), nil
	}
	if in == "" && !(f.eventTime && !v.t.IsZero()) {
		return "", nil
	}
	switch f.kind {
	case filterLower:
		return st.done(appendCase(st.take(), in, unicode.ToLower)), nil
	case filterUpper:
		return st.done(appendCase(st.take(), in, unicode.ToUpper)), nil
	case filterSHA256, filterSHA1, filterMD5:
		b := st.take()
		if f.email {
			b = appendCase(b, strings.TrimSpace(in), unicode.ToLower)
			in = unsafeString(b)
		}
		var sum [sha256.Size]byte
		var n int
		switch f.kind {
		case filterSHA256:
			sum, n = sha256.Sum256(unsafeBytes(in)), sha256.Size
		case filterSHA1:
			s := sha1.Sum(unsafeBytes(in))
			n = copy(sum[:], s[:])
		default:
			s := md5.Sum(unsafeBytes(in))
			n = copy(sum[:], s[:])
		}
		return st.done(hex.AppendEncode(b[:0], sum[:n])), nil
	case filterUnix, filterUnixMS, filterRFC3339:
		t := v.t
		if !f.eventTime || t.IsZero() {
			var err error
			if t, err = time.Parse(time.RFC3339, in); err != nil {
				return "", errNotTime
			}
		}
		b := st.take()
		switch f.kind {
		case filterUnix:
			b = strconv.AppendInt(b, t.Unix(), 10)
		case filterUnixMS:
			b = strconv.AppendInt(b, t.UnixMilli(), 10)
		default:
			b = t.UTC().AppendFormat(b, time.RFC3339)
		}
		return st.done(b), nil
	case filterCents:
		b, ok := appendCents(st.take(), in)
		if !ok {
			return "", errNotDecimal
		}
		return st.done(b), nil
	}
	panic("templates: unhandled filter kind " + strconv.Itoa(int(f.kind)))
}

// appendCase appends s with each rune mapped; ASCII takes a fast path and
// invalid UTF-8 bytes are kept as they are.
func appendCase(b []byte, s string, fn func(rune) rune) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, byte(fn(rune(c))))
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, c)
		} else {
			b = utf8.AppendRune(b, fn(r))
		}
		i += size
	}
	return b
}
