// Package triage groups dead letters by what made them fail: a failure
// fingerprint (partner, reason, HTTP status, and the error with its
// numbers, ids, hosts and query values masked), a short stable group id
// for it, the redaction that keeps samples fit to show, and exact sums of
// revenue per currency.
package triage

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Fingerprint is what a dead letter's failure looks like once what varies
// from one letter to the next is masked.
type Fingerprint struct {
	Partner string `json:"partner"`
	Reason  string `json:"reason"`
	Status  int    `json:"status,omitempty"` // last HTTP status; 0: none
	Error   string `json:"error"`            // the last error, masked
}

// Of returns the fingerprint of a dead letter of partner, dead for reason
// with last HTTP status and last error errText.
func Of(partner, reason string, status int, errText string) Fingerprint {
	return Fingerprint{Partner: partner, Reason: reason, Status: status, Error: Mask(errText)}
}

// ID is the group's short stable id: "g" and 10 hex digits of SHA-256
// over the fingerprint. The same failure gets the same id in every call,
// on every machine.
func (f Fingerprint) ID() string {
	h := sha256.New()
	for _, s := range []string{f.Partner, f.Reason, strconv.Itoa(f.Status), f.Error} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "g" + hex.EncodeToString(h.Sum(nil))[:10]
}

var (
	urlRE  = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)
	uuidRE = regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	// An IPv4 or bracketed IPv6 address, with its port if any.
	ipRE = regexp.MustCompile(`\[[0-9a-fA-F:.]+\](:\d+)?|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?\b`)
	// A host name: labels with a dot, ending in letters, with a port if any.
	hostRE = regexp.MustCompile(`\b(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}(:\d+)?\b`)
	// An id: a word of 8 or more letters, digits, - and _ with at least
	// one digit (a delivery id, a click id, a hex token).
	idRE      = regexp.MustCompile(`\b[A-Za-z0-9_-]*[0-9][A-Za-z0-9_-]*\b`)
	numRE     = regexp.MustCompile(`\d+`)
	decimalRE = regexp.MustCompile(`\b\d+\.\d+\b`)
)

// Mask returns errText with what varies between letters of one failure
// masked: URLs keep their scheme and path shape, with the host and query
// values masked; then UUIDs, IP addresses and host names, ids (words of 8
// or more characters with a digit) and numbers.
func Mask(errText string) string {
	s := urlRE.ReplaceAllStringFunc(errText, maskURL)
	s = uuidRE.ReplaceAllString(s, "<id>")
	s = ipRE.ReplaceAllString(s, "<host>")
	s = hostRE.ReplaceAllStringFunc(s, func(h string) string {
		if strings.HasPrefix(h, "<") {
			return h
		}
		return "<host>"
	})
	s = decimalRE.ReplaceAllString(s, "<n>")
	s = idRE.ReplaceAllStringFunc(s, func(w string) string {
		if len(w) >= 8 {
			return "<id>"
		}
		return numRE.ReplaceAllString(w, "<n>")
	})
	return s
}

// maskURL keeps a URL's scheme, and its path with each segment that
// carries a digit masked; host and query values become masks.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<url>"
	}
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://<host>")
	for seg := range strings.SplitSeq(strings.TrimPrefix(u.EscapedPath(), "/"), "/") {
		if seg == "" && u.Path == "" {
			break
		}
		b.WriteByte('/')
		if strings.ContainsAny(seg, "0123456789") {
			seg = "<id>"
		}
		b.WriteString(seg)
	}
	if u.RawQuery != "" {
		b.WriteByte('?')
		for i, kv := range strings.Split(u.RawQuery, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			k, _, _ := strings.Cut(kv, "=")
			b.WriteString(k)
			b.WriteString("=<v>")
		}
	}
	return b.String()
}

// RedactURL keeps a URL's scheme, host and path and replaces every query
// value with "***"; userinfo and fragment are dropped: what the worker's
// logs show of a URL.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	u.User, u.Fragment, u.RawFragment = nil, "", ""
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, kv := range parts {
			if k, _, ok := strings.Cut(kv, "="); ok {
				parts[i] = k + "=***"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}

// RedactText redacts every URL inside s, as RedactURL does.
func RedactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlRE.ReplaceAllStringFunc(s, RedactURL)
}
