package ops

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// needles are one user's values in every form a partner's template can
// give them (as sent, lower and upper case, hashed with sha256, sha1 or
// md5 in hex, URL-escaped), to find and remove them in what postback kept
// of the requests it sent: URLs, errors, responses.
type needles struct {
	values map[string]bool // as added
	forms  map[string]bool // every form, lowercased
	long   []string        // the forms of at least minNeedle bytes, lowercased
	re     *regexp.Regexp  // long, in any case, to replace them; nil when none
}

// minNeedle is the shortest form looked for inside free text: a shorter
// one would match other users' data by chance. Query values and path
// segments are compared whole, whatever their length.
const minNeedle = 6

func newNeedles() *needles { return &needles{values: map[string]bool{}, forms: map[string]bool{}} }

// add adds values; it reports whether any was new.
func (n *needles) add(values ...string) bool {
	added := false
	for _, v := range values {
		if v == "" || n.values[v] {
			continue
		}
		n.values[v], added = true, true
		for _, c := range []string{v, strings.ToLower(v), strings.ToUpper(v)} {
			s256, s1, m5 := sha256.Sum256([]byte(c)), sha1.Sum([]byte(c)), md5.Sum([]byte(c))
			for _, f := range []string{c, hex.EncodeToString(s256[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(m5[:]),
				url.QueryEscape(c), url.PathEscape(c)} {
				n.forms[strings.ToLower(f)] = true
			}
		}
	}
	if added {
		n.re, n.long = nil, n.long[:0]
		for f := range n.forms {
			if len(f) >= minNeedle {
				n.long = append(n.long, f)
			}
		}
		// Longest first, so that a form is not cut by a shorter one inside it.
		slices.SortFunc(n.long, func(a, b string) int { return len(b) - len(a) })
		if len(n.long) > 0 {
			quoted := make([]string, len(n.long))
			for i, f := range n.long {
				quoted[i] = regexp.QuoteMeta(f)
			}
			n.re = regexp.MustCompile("(?i)" + strings.Join(quoted, "|"))
		}
	}
	return added
}

// inURL reports whether URL raw carries one of the forms: as a whole query
// value or path segment, or inside it.
func (n *needles) inURL(raw string) bool {
	if raw == "" {
		return false
	}
	path, query, _ := strings.Cut(raw, "?")
	query, _, _ = strings.Cut(query, "#")
	for _, seg := range strings.Split(path, "/") {
		if n.whole(seg) {
			return true
		}
	}
	for _, kv := range strings.Split(query, "&") {
		_, v, _ := strings.Cut(kv, "=")
		if n.whole(v) {
			return true
		}
	}
	return n.inText(raw)
}

func (n *needles) whole(s string) bool {
	if s == "" {
		return false
	}
	if u, err := url.QueryUnescape(s); err == nil && n.forms[strings.ToLower(u)] {
		return true
	}
	return n.forms[strings.ToLower(s)]
}

// inText reports whether text holds one of the long forms as a whole
// token: not inside a longer identifier ("cust-1" is not in "cust-12").
// It runs on every record a scan reads: a search for each form in the
// lowercased text is many times faster than a regular expression.
func (n *needles) inText(text string) bool {
	if text == "" || len(n.long) == 0 {
		return false
	}
	text = strings.ToLower(text)
	for _, f := range n.long {
		for from := 0; from < len(text); {
			i := strings.Index(text[from:], f)
			if i < 0 {
				break
			}
			i += from
			end := i + len(f)
			if end < len(text) && text[end] == '.' && (end+1 == len(text) || !idByte(text[end+1])) {
				end++ // a full stop ends a sentence, not the identifier
			}
			if (i == 0 || !idByte(text[i-1])) && (end == len(text) || !idByte(text[end])) {
				return true
			}
			from = i + 1
		}
	}
	return false
}

// idByte reports whether b can be part of an identifier (an id, an
// email, a hex digest, a URL-escaped value).
func idByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("-_.@+%", b) >= 0
}

// erased stands for what was removed.
const erased = "erased"

// redactURL returns URL raw with every query value removed (the keys
// stay, so the record still shows which fields were sent), its fragment
// dropped, and any form left in it replaced.
func (n *needles) redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	path, query, hasQuery := strings.Cut(raw, "?")
	path, _, _ = strings.Cut(path, "#")
	query, _, _ = strings.Cut(query, "#")
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if i >= 3 && n.whole(seg) { // after scheme://host
			segs[i] = erased
		}
	}
	out := n.redactText(strings.Join(segs, "/"))
	if hasQuery {
		kvs := strings.Split(query, "&")
		for i, kv := range kvs {
			k, _, _ := strings.Cut(kv, "=")
			kvs[i] = k + "="
		}
		out += "?" + strings.Join(kvs, "&")
	}
	return out
}

// urlInText finds URLs in free text, as Go's HTTP client quotes them in
// its errors.
var urlInText = regexp.MustCompile(`https?://[^\s"'<>]+`)

// redactText returns text with its URLs redacted (redactURL) and every
// long form replaced.
func (n *needles) redactText(text string) string {
	if text == "" {
		return ""
	}
	text = urlInText.ReplaceAllStringFunc(text, func(u string) string {
		if !strings.Contains(u, "?") {
			return u // its path is redacted below, with the rest of the text
		}
		return n.redactURL(u)
	})
	if n.re != nil {
		text = n.re.ReplaceAllString(text, erased)
	}
	return text
}
