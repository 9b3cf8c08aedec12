package templates

import "bytes"

// pathGuard keeps macro values from making dot segments in a URL path.
//
// A segment that percent-decodes to "." or ".." is a step in the path, not
// a name: servers and proxies resolve it, and RFC 3986 and the WHATWG URL
// standard both read %2E as '.'. So no escaping of the value can send it
// as data, and the render is refused instead: the delivery dead-letters
// with reason "render", where it can be seen, rather than reaching a path
// of the partner's that the template never named.
type pathGuard struct {
	start int        // output offset of the '/' that starts the path
	segs  []segMacro // the path's segments, split at the template's '/'
}

// segMacro is the first macro standing in a path segment; text is "" for
// a segment of literal text only, which stays as the template wrote it.
type segMacro struct {
	text   string
	offset int
}

// check returns a *RenderError when a segment that holds a macro is a dot
// segment in out, the rendered URL. The segments of out are those of the
// template one to one, since a value in the path never writes '/', '?' or
// '#' (escPath encodes them and raw is refused there).
func (g *pathGuard) check(out []byte) error {
	path := out[g.start+1:]
	if i := bytes.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for _, m := range g.segs {
		seg, rest, _ := bytes.Cut(path, []byte{'/'})
		path = rest
		if m.text == "" {
			continue
		}
		if dot := dotSegment(seg); dot != "" {
			msg := "path segment " + quoteValue(string(seg))
			if string(seg) == dot {
				msg += " is a dot segment"
			} else {
				msg += " holds the dot segment " + quoteValue(dot) + " once percent-decoded"
			}
			return &RenderError{Offset: m.offset, Macro: m.text, Msg: msg + "; the partner would resolve it to another path"}
		}
	}
	return nil
}

// dotSegment returns "." or ".." when seg, percent-decoded as many times as
// it still changes, holds such a segment, and "" otherwise. The dot segment
// may be all of seg, or lie between the '/' or '\' that a %2F or %5C
// decodes to (nginx decodes before it resolves dot segments; WHATWG URLs
// and Windows servers read '\' as '/'), or come before a ';' (Tomcat reads
// "..;x" as ".."). It does not allocate for segments of up to 128 bytes.
func dotSegment(seg []byte) string {
	if bytes.IndexByte(seg, '.') < 0 && bytes.IndexByte(seg, '%') < 0 {
		return ""
	}
	b := seg
	if bytes.IndexByte(seg, '%') >= 0 {
		var buf [128]byte
		b = decodeAll(buf[:0], seg)
	}
	for len(b) > 0 {
		part := b
		if i := bytes.IndexAny(b, `/\`); i >= 0 {
			part, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if i := bytes.IndexByte(part, ';'); i >= 0 {
			part = part[:i]
		}
		switch string(part) {
		case ".":
			return "."
		case "..":
			return ".."
		}
	}
	return ""
}

// decodeAll appends s to dst with its %XX sequences decoded until none is
// left: what decoding s once, twice, or as often as a server cares to,
// ends at ("%252E" -> "%2E" -> "."). A '%' that starts no %XX is kept.
//
// One pass does it: each byte is pushed on dst, and whenever the top three
// bytes read %XX they are replaced by the byte they encode, which may in
// turn end an earlier %XX. Two %XX never overlap, so every order of
// decoding ends at the same text, and a "." or ".." segment seen after any
// number of decodings is still there in it: '.', '/', '\' and ';' are never
// part of a %XX.
func decodeAll(dst, s []byte) []byte {
	base := len(dst)
	for _, c := range s {
		dst = append(dst, c)
		for n := len(dst); n-base >= 3 && dst[n-3] == '%' && isHex(dst[n-2]) && isHex(dst[n-1]); n = len(dst) {
			dst = append(dst[:n-3], unhex(dst[n-2])<<4|unhex(dst[n-1]))
		}
	}
	return dst
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
