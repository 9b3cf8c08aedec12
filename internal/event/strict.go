package event

import (
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// Left to itself, encoding/json reads a body more loosely than the fast
// path does. It replaces invalid UTF-8 and lone surrogate escapes with
// U+FFFD, so two events with different ids can decode to one id and the
// second be taken for a duplicate. It matches keys case-insensitively and
// keeps the last of a repeated key, so {"id":"k-1","ID":"k-2"} is k-2 to
// it and k-1 to many other readers of the same bytes. checkStrict refuses
// such a body before encoding/json reads it, so that both paths of
// DecodeEvent take and refuse the same bodies, and what is stored is what
// was sent.

// shape is what an object of the event may hold: its keys, spelled as
// documented, and for each the shape of its value when that is an object
// of the event (nil for any other value). A free object (params) holds
// any keys.
type shape struct {
	keys   []string
	nested []*shape
	free   bool
}

// eventShape is the shape of the event object, read from the json tags
// of eventJSON, so that it cannot drift from what encoding/json decodes.
var eventShape = shapeOf(reflect.TypeFor[eventJSON]())

func shapeOf(t reflect.Type) *shape {
	switch t.Kind() {
	case reflect.Struct:
		if t.NumField() > 64 {
			panic("event: " + t.Name() + " has more fields than checker.object tracks")
		}
		s := &shape{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			s.keys = append(s.keys, name)
			s.nested = append(s.nested, shapeOf(f.Type))
		}
		return s
	case reflect.Map:
		return &shape{free: true}
	}
	return nil
}

// unknown says why key is not one of s's.
func (s *shape) unknown(key string) string {
	for _, k := range s.keys {
		if strings.EqualFold(k, key) { // as encoding/json matches keys
			return "unknown field (keys are case-sensitive)"
		}
	}
	return "unknown field (check its spelling; free keys go in params)"
}

// checkStrict returns the first of these in data, as a FieldError naming
// it: a string, key or value, that is not valid UTF-8 or holds a lone
// surrogate escape; in the event's objects, a key that is not the
// object's (spelled in another case or not at all); a key repeated in an
// object, params included. It returns nil when there is none, and also
// when data is not a JSON object: encoding/json then says what is wrong
// with it.
func checkStrict(data []byte) *FieldError {
	c := checker{fastScan: fastScan{s: string(data)}}
	c.ws()
	if c.peek() == '{' {
		c.object("", eventShape)
	}
	return c.err
}

// checker walks JSON for checkStrict. Its methods return false to stop:
// at the first problem, which they set in err, or at malformed JSON.
type checker struct {
	fastScan
	err *FieldError
}

// value reads the value of key in the object at path; sh is its shape
// when it is one of the event's objects. (A path is joined only for an
// error, or for an object of the event, whose path is its key.)
func (c *checker) value(path, key string, sh *shape) bool {
	if sh != nil && c.peek() == '{' {
		return c.object(join(path, key), sh)
	}
	return c.skip(path, key)
}

// object reads the object at c.i, path naming it.
func (c *checker) object(path string, sh *shape) bool {
	c.i++ // {
	c.ws()
	if c.peek() == '}' {
		c.i++
		return true
	}
	var seen uint64              // the keys of sh met, a bit each
	var seenFree map[string]bool // the keys met in a free object
	for {
		c.ws()
		start := c.i
		key, bad, ok := c.str(true)
		if !ok {
			return false
		}
		if bad != "" {
			raw := c.s[start+1 : c.i-1]
			c.err = &FieldError{join(path, strings.ToValidUTF8(raw, "\uFFFD")), "key " + keyProblem(bad)}
			return false
		}
		var next *shape
		if sh.free {
			if seenFree[key] {
				c.err = &FieldError{join(path, key), "repeated key"}
				return false
			}
			if seenFree == nil {
				seenFree = make(map[string]bool)
			}
			seenFree[key] = true
		} else {
			k := slices.Index(sh.keys, key)
			switch {
			case k < 0:
				c.err = &FieldError{join(path, key), sh.unknown(key)}
				return false
			case seen&(1<<k) != 0:
				c.err = &FieldError{join(path, key), "repeated key"}
				return false
			}
			seen |= 1 << k
			next = sh.nested[k]
		}
		c.ws()
		if c.peek() != ':' {
			return false
		}
		c.i++
		c.ws()
		if !c.value(path, key, next) {
			return false
		}
		c.ws()
		switch c.peek() {
		case ',':
			c.i++
		case '}':
			c.i++
			return true
		default:
			return false
		}
	}
}

// skip reads the value of key in the object at path, when it is not one
// of the event's objects, checking every string in it; the key names them
// all. It keeps no stack, so no depth of nesting can exhaust one.
func (c *checker) skip(path, key string) bool {
	depth := 0
	for c.i < len(c.s) {
		switch c.s[c.i] {
		case '"':
			_, bad, ok := c.str(false)
			if !ok {
				return false
			}
			if bad != "" {
				c.err = &FieldError{join(path, key), bad}
				return false
			}
			if depth == 0 {
				return true
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return true // the end of the enclosing object
			}
			if depth--; depth == 0 {
				c.i++
				return true
			}
		case ',':
			if depth == 0 {
				return true
			}
		}
		c.i++
	}
	return depth == 0
}

// The problems str finds in a string.
const (
	badUTF8 = "not valid UTF-8"
	// A lone surrogate escape is half of a UTF-16 pair: it names no
	// character, so no UTF-8 string can hold it, and encoding/json reads
	// it as U+FFFD. It is refused for the same reason as invalid UTF-8.
	badSurrogate = "lone surrogate escape "
)

// keyProblem words str's problem for a key.
func keyProblem(bad string) string {
	if bad == badUTF8 {
		return bad
	}
	return "has a " + bad
}

// str reads the string at c.i. It returns the string unescaped when
// unescape is set, and bad saying what is wrong with it ("" when nothing);
// ok is false when it is not a JSON string.
func (c *checker) str(unescape bool) (s, bad string, ok bool) {
	if c.peek() != '"' {
		return "", "", false
	}
	c.i++
	start := c.i
	var b []byte // the unescaped string, once an escape is met
	for c.i < len(c.s) {
		ch := c.s[c.i]
		switch {
		case ch == '"':
			s = c.s[start:c.i]
			if b != nil {
				s = string(b)
			}
			c.i++
			return s, bad, true
		case ch < 0x20:
			return "", "", false
		case ch == '\\':
			if unescape && b == nil {
				b = []byte(c.s[start:c.i])
			}
			r, n := unquoteEscape(c.s[c.i:])
			switch {
			case n == 0:
				return "", "", false
			case r < 0 && bad == "":
				bad = badSurrogate + c.s[c.i:c.i+6] + " (not a character)"
			case b != nil:
				b = utf8.AppendRune(b, r)
			}
			c.i += n
			continue
		case ch >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(c.s[c.i:])
			if r == utf8.RuneError && n == 1 && bad == "" {
				bad = badUTF8
			}
			if b != nil {
				b = append(b, c.s[c.i:c.i+n]...)
			}
			c.i += n
			continue
		}
		if b != nil {
			b = append(b, ch)
		}
		c.i++
	}
	return "", "", false
}

// unquoteEscape reads the escape that s starts with and returns the rune
// it stands for and its length in s: a \u escape of a surrogate pair
// reads both. r is -1 for a lone surrogate escape, whose length is 6; n
// is 0 when s does not start with an escape JSON allows.
func unquoteEscape(s string) (r rune, n int) {
	if len(s) < 2 {
		return 0, 0
	}
	switch s[1] {
	case '"', '\\', '/':
		return rune(s[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r := hex4(s[2:])
		switch {
		case r < 0:
			return 0, 0
		case r < 0xd800 || r > 0xdfff:
			return r, 6
		case r <= 0xdbff && len(s) >= 12 && s[6] == '\\' && s[7] == 'u':
			if lo := hex4(s[8:]); lo >= 0xdc00 && lo <= 0xdfff {
				return 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00), 12
			}
		}
		return -1, 6
	}
	return 0, 0
}

// hex4 returns the value of the four hex digits s starts with, -1 when
// it does not.
func hex4(s string) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case isDigit(c):
			c -= '0'
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			c = (c | 0x20) - 'a' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// join returns the dotted path of key in the object at path, the key cut
// to 64 bytes (at a character) so that an error stays short.
func join(path, key string) string {
	key = truncate(key, 64)
	if path == "" {
		return key
	}
	return path + "." + key
}
