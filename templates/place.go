package templates

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
)

// placeMacros decides each macro's escaper from the context and the place
// the macro stands in, and checks the literal text of the template.
func placeMacros(src string, ctx Context, pieces []piece) error {
	switch ctx {
	case ContextURL:
		return placeURL(pieces)
	case ContextJSON:
		return placeJSON(pieces)
	}
	for _, p := range pieces {
		if p.m == nil {
			if ctx == ContextHeader {
				if i := strings.IndexAny(p.lit, "\r\n\x00"); i >= 0 {
					return errorf(p.off+i, "a header value cannot contain a line break or NUL")
				}
			}
			continue
		}
		raw := p.m.lastFilter() == filterRaw
		switch {
		case ctx == ContextForm && raw:
			p.m.esc = escRawQuery
		case ctx == ContextForm:
			p.m.esc = escQuery
		case ctx == ContextHeader:
			p.m.esc = escHeader
		default:
			p.m.esc = escNone
		}
	}
	return nil
}

func (m *node) lastFilter() filterKind {
	if len(m.filters) == 0 {
		return 0
	}
	return m.filters[len(m.filters)-1].kind
}

// The parts of a URL, in the order they come.
type urlPart uint8

const (
	partScheme urlPart = iota
	partSlashes
	partAuthority
	partPath
	partQuery
	partFragment
)

// placeURL walks the literal text of a URL template, tracking which part
// of the URL it is in, and gives each macro the escaper of its part.
// Macros are refused where a value could redirect the request: scheme,
// userinfo, host, port; and in the fragment, which is never sent.
func placeURL(pieces []piece) error {
	part := partScheme
	schemeLen, slashes := 0, 0
	authStart := -1 // index in pieces, and offset, where the authority starts
	var auth strings.Builder
	for k, p := range pieces {
		if p.m != nil {
			switch part {
			case partScheme, partSlashes:
				return errorf(p.off, "macro "+p.m.text+" not allowed in the URL scheme")
			case partAuthority:
				return errorf(p.off, "macro "+p.m.text+" not allowed in the URL "+authorityPart(auth.String(), pieces[k+1:]))
			case partFragment:
				return errorf(p.off, "macro "+p.m.text+" not allowed in the URL fragment (browsers keep it, servers never see it)")
			case partPath:
				p.m.esc = escPath
				if p.m.lastFilter() == filterRaw {
					p.m.esc = escRawPath
				}
			case partQuery:
				p.m.esc = escQuery
				if p.m.lastFilter() == filterRaw {
					p.m.esc = escRawQuery
				}
			}
			continue
		}
		for i := 0; i < len(p.lit); i++ {
			c, off := p.lit[i], p.off+i
			if c <= ' ' || c == 0x7f {
				if c == ' ' {
					return errorf(off, "a URL cannot contain a space; write it as %20")
				}
				return errorf(off, "a URL cannot contain a control character")
			}
			switch part {
			case partScheme:
				switch {
				case c == ':' && schemeLen > 0:
					part = partSlashes
				case isLetter(c) || schemeLen > 0 && (isDigit(c) || c == '+' || c == '-' || c == '.'):
					schemeLen++
				default:
					return errorf(off, "a URL must start with a scheme and host, like https://host/")
				}
			case partSlashes:
				if c != '/' {
					return errorf(off, "a URL must start with a scheme and host, like https://host/")
				}
				if slashes++; slashes == 2 {
					part, authStart = partAuthority, off+1
				}
			case partAuthority:
				if c == '/' || c == '?' || c == '#' {
					if auth.Len() == 0 {
						return errorf(authStart, "a URL needs a host, like https://host/")
					}
					part = map[byte]urlPart{'/': partPath, '?': partQuery, '#': partFragment}[c]
					continue
				}
				auth.WriteByte(c)
			case partPath:
				if c == '?' || c == '#' {
					part = map[byte]urlPart{'?': partQuery, '#': partFragment}[c]
				}
			case partQuery:
				if c == '#' {
					part = partFragment
				}
			}
		}
	}
	switch {
	case part <= partSlashes:
		return errorf(0, "a URL must start with a scheme and host, like https://host/")
	case part == partAuthority && auth.Len() == 0:
		return errorf(authStart, "a URL needs a host, like https://host/")
	}
	return checkURL(pieces)
}

// authorityPart names the authority part a macro stands in, from the
// authority text before it and the template text after it.
func authorityPart(before string, after []piece) string {
	for _, p := range after {
		if p.m != nil {
			continue
		}
		if i := strings.IndexAny(p.lit, "/?#"); i >= 0 {
			if strings.Contains(p.lit[:i], "@") {
				return "userinfo"
			}
			break
		}
		if strings.Contains(p.lit, "@") {
			return "userinfo"
		}
	}
	if i := strings.LastIndexByte(before, '@'); i >= 0 {
		before = before[i+1:]
	}
	if i := strings.LastIndexByte(before, ':'); i >= 0 && i > strings.LastIndexByte(before, ']') {
		return "port"
	}
	return "host"
}

// checkURL parses the template with every macro replaced by "x", so that a
// malformed literal part (a bad port, a broken %-escape) fails at load
// rather than at every delivery.
func checkURL(pieces []piece) error {
	var b strings.Builder
	for _, p := range pieces {
		if p.m != nil {
			b.WriteByte('x')
		} else {
			b.WriteString(p.lit)
		}
	}
	if _, err := url.Parse(b.String()); err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return errorf(0, "invalid URL: "+err.Error())
	}
	return nil
}

// placeJSON tracks whether each macro stands inside a JSON string. Inside,
// it renders as string content; outside, only a json-filtered macro (a
// whole JSON literal) may stand, since bare text there could add keys.
// The template with placeholders must then be valid JSON.
func placeJSON(pieces []piece) error {
	inString, escaped := false, false
	var doc []byte
	type mark struct{ doc, src int } // where each piece starts, for offsets
	marks := make([]mark, 0, len(pieces))
	for _, p := range pieces {
		marks = append(marks, mark{len(doc), p.off})
		if p.m == nil {
			for i := 0; i < len(p.lit); i++ {
				switch c := p.lit[i]; {
				case escaped:
					escaped = false
				case inString && c == '\\':
					escaped = true
				case c == '"':
					inString = !inString
				}
			}
			doc = append(doc, p.lit...)
			continue
		}
		last := p.m.lastFilter()
		switch {
		case last == filterRaw:
			return errorf(p.off, "filter \"raw\" is not available in a JSON body, in "+p.m.text)
		case inString && last == filterJSON:
			return errorf(p.off, "macro "+p.m.text+" renders a whole JSON value; remove the quotes around it")
		case inString:
			p.m.esc = escJSONString
		case last == filterJSON:
			p.m.esc = escNone
			doc = append(doc, "null"...)
		default:
			return errorf(p.off, "macro "+p.m.text+" outside a JSON string needs the json filter, like "+
				strings.TrimSuffix(p.m.text, "}")+"|json}")
		}
	}
	var v any
	err := json.Unmarshal(doc, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		at := max(int(se.Offset)-1, 0)
		off := 0
		for _, m := range marks {
			if m.doc <= at {
				off = m.src + at - m.doc
			}
		}
		return errorf(off, "invalid JSON body: "+se.Error())
	}
	return err
}
