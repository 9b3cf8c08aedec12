package templates

import (
	"errors"
	"unicode/utf8"
)

// escaper says how a macro's final value is written into the output. Parse
// picks it from the context and the macro's place in the template.
type escaper uint8

const (
	escNone       escaper = iota // text context; a json literal in a JSON body
	escPath                      // a URL path: like url.PathEscape
	escQuery                     // a URL query or form body: like url.QueryEscape
	escRawQuery                  // raw in a URL query or form body
	escJSONString                // inside a JSON string
	escHeader                    // a header value: refuse control bytes
)

const upperhex = "0123456789ABCDEF"

// Byte classes: the bytes each escaper writes as they are. Everything else
// is percent-encoded.
var (
	pathSafe     = byteSet(unreserved + "$&+:=@")
	querySafe    = byteSet(unreserved)
	rawQuerySafe = byteSet(unreserved + "!$'()*,:@/+")
)

const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

func byteSet(s string) (set [256]bool) {
	for i := 0; i < len(s); i++ {
		set[s[i]] = true
	}
	return set
}

var (
	errHeaderLineBreak = errors.New("value contains a line break (CR or LF), which a header cannot carry")
	errHeaderControl   = errors.New("value contains a control character, which a header cannot carry")
)

// appendEscaped writes s into dst as esc says.
func appendEscaped(dst []byte, s string, esc escaper) ([]byte, error) {
	switch esc {
	case escQuery:
		return appendPercent(dst, s, &querySafe, true, false), nil
	case escPath:
		// A value that makes a dot segment is refused after the render, by
		// the template's pathGuard: it needs the whole segment.
		return appendPercent(dst, s, &pathSafe, false, false), nil
	case escRawQuery:
		return appendPercent(dst, s, &rawQuerySafe, false, true), nil
	case escJSONString:
		return appendJSONString(dst, s), nil
	case escHeader:
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
				if c == '\r' || c == '\n' {
					return dst, errHeaderLineBreak
				}
				return dst, errHeaderControl
			}
		}
	}
	return append(dst, s...), nil
}

// appendPercent percent-encodes every byte of s outside safe. plusSpace
// writes ' ' as '+' (query encoding); keepEscapes keeps well-formed %XX
// sequences as they are (raw).
func appendPercent(dst []byte, s string, safe *[256]bool, plusSpace, keepEscapes bool) []byte {
	run := 0 // start of the pending run of safe bytes
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safe[c] {
			continue
		}
		if keepEscapes && c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			i += 2
			continue
		}
		dst = append(dst, s[run:i]...)
		if plusSpace && c == ' ' {
			dst = append(dst, '+')
		} else {
			dst = append(dst, '%', upperhex[c>>4], upperhex[c&15])
		}
		run = i + 1
	}
	return append(dst, s[run:]...)
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// appendJSONString appends s as the content of a JSON string (no quotes),
// escaped as encoding/json does: quotes, backslashes and control
// characters escaped, U+2028 and U+2029 escaped, invalid UTF-8 replaced by
// U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	run := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[run:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', upperhex[c>>4], upperhex[c&15])
			}
			i++
			run = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[run:i]...)
			switch r {
			case utf8.RuneError:
				dst = append(dst, `\ufffd`...)
			case '\u2028':
				dst = append(dst, `\u2028`...)
			default:
				dst = append(dst, `\u2029`...)
			}
			i += size
			run = i
			continue
		}
		i += size
	}
	return append(dst, s[run:]...)
}

// appendJSONQuoted appends s as a quoted JSON string.
func appendJSONQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONString(dst, s)
	return append(dst, '"')
}
