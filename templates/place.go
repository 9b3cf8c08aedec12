package templates

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
)

// placeMacros decides each macro's escaper from the context and the place
// the macro stands in, and checks the literal text of the template. For a
// URL with macros in its path it also returns the guard Render runs
// against dot segments.
func placeMacros(ctx Context, pieces []piece) (*pathGuard, error) {
	switch ctx {
	case ContextURL:
		return placeURL(pieces)
	case ContextJSON:
		return nil, placeJSON(pieces)
	}
	for _, p := range pieces {
		if p.m == nil {
			if ctx == ContextHeader {
				if i := strings.IndexAny(p.lit, "\r\n\x00"); i >= 0 {
					return nil, errorf(p.off+i, "a header value cannot contain a line break or NUL")
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
	return nil, nil
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
// userinfo, host, port; and in the fragment, which is never sent. raw is
// refused in the path, where the %XX it keeps could make a dot segment or
// a '/' the partner's server decodes. The path's segments, and the first
// macro in each, make the guard returned when a macro stands in the path.
func placeURL(pieces []piece) (*pathGuard, error) {
	part := partScheme
	schemeLen, slashes := 0, 0
	authStart := -1 // offset where the authority starts
	var auth strings.Builder
	out := 0 // output length of the pieces before this one, until the path
	path := &pathGuard{start: -1}
	inPath := false // a macro stands in the path
	for k, p := range pieces {
		if p.m != nil {
			switch part {
			case partScheme, partSlashes:
				return nil, errorf(p.off, "macro "+p.m.text+" not allowed in the URL scheme")
			case partAuthority:
				return nil, errorf(p.off, "macro "+p.m.text+" not allowed in the URL "+authorityPart(auth.String(), pieces[k+1:]))
			case partFragment:
				return nil, errorf(p.off, "macro "+p.m.text+" not allowed in the URL fragment (browsers keep it, servers never see it)")
			case partPath:
				if p.m.lastFilter() == filterRaw {
					return nil, errorf(p.off, "filter \"raw\" is not available in a URL path, in "+p.m.text+
						" (a %2E or %2F it kept could change the path)")
				}
				p.m.esc = escPath
				if seg := &path.segs[len(path.segs)-1]; seg.text == "" {
					seg.text, seg.offset = p.m.text, p.off
				}
				inPath = true
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
					return nil, errorf(off, "a URL cannot contain a space; write it as %20")
				}
				return nil, errorf(off, "a URL cannot contain a control character")
			}
			switch part {
			case partScheme:
				switch {
				case c == ':' && schemeLen > 0:
					part = partSlashes
				case isLetter(c) || schemeLen > 0 && (isDigit(c) || c == '+' || c == '-' || c == '.'):
					schemeLen++
				default:
					return nil, errorf(off, "a URL must start with a scheme and host, like https://host/")
				}
			case partSlashes:
				if c != '/' {
					return nil, errorf(off, "a URL must start with a scheme and host, like https://host/")
				}
				if slashes++; slashes == 2 {
					part, authStart = partAuthority, off+1
				}
			case partAuthority:
				if c == '/' || c == '?' || c == '#' {
					if auth.Len() == 0 {
						return nil, errorf(authStart, "a URL needs a host, like https://host/")
					}
					part = map[byte]urlPart{'/': partPath, '?': partQuery, '#': partFragment}[c]
					if part == partPath {
						// No macro comes before the path, so its offset in
						// the output is fixed.
						path.start, path.segs = out+i, []segMacro{{}}
					}
					continue
				}
				auth.WriteByte(c)
			case partPath:
				switch c {
				case '/':
					path.segs = append(path.segs, segMacro{})
				case '?':
					part = partQuery
				case '#':
					part = partFragment
				}
			case partQuery:
				if c == '#' {
					part = partFragment
				}
			}
		}
		out += len(p.lit)
	}
	switch {
	case part <= partSlashes:
		return nil, errorf(0, "a URL must start with a scheme and host, like https://host/")
	case part == partAuthority && auth.Len() == 0:
		return nil, errorf(authStart, "a URL needs a host, like https://host/")
	}
	if err := checkURL(pieces); err != nil {
		return nil, err
	}
	if !inPath {
		return nil, nil
	}
	return path, nil
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
