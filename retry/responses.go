package retry

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Rule is one entry of a partner's `responses:` list: which answers it
// recognises (status, body, headers: all that are set must match) and the
// outcome it gives them. Rules are for partners that answer HTTP 200 and
// put their verdict in the body ("success=false; err_msg=…").
//
// A Rule never matches an attempt that got no response. It reads the
// start of the body the sender kept (64 KiB at most). A Rule is immutable
// once built by [ParseRule] and safe for concurrent use.
type Rule struct {
	// Index is the rule's place in the list, from 0: Decision.Rule names it.
	Index   int
	Outcome Outcome // Delivered, Duplicate, Retry or Rejected

	ranges  []statusRange // empty: any status
	body    *regexp.Regexp
	headers []headerMatch
	desc    string // String, made once
}

type headerMatch struct {
	name string // canonical
	re   *regexp.Regexp
}

// RuleSource is a rule as the config writes it.
type RuleSource struct {
	Status      []string
	BodyMatch   string
	HeaderMatch [][2]string // name, regexp; in the config's order
	Outcome     string
}

// RuleError is a rule that does not compile: Field is the config's name
// of the part at fault ("status", "body_match", "header_match.X-Result",
// "outcome"), Item the index inside status (0 otherwise), and Offset the
// byte offset in the value where the problem is, when known.
type RuleError struct {
	Field  string
	Item   int
	Offset int
	Msg    string
}

func (e *RuleError) Error() string { return e.Field + ": " + e.Msg }

// ParseRule compiles rule number index of a partner's responses.
func ParseRule(index int, src RuleSource) (Rule, error) {
	r := Rule{Index: index}
	switch o, err := ParseOutcome(src.Outcome); {
	case src.Outcome == "":
		return Rule{}, &RuleError{Field: "outcome", Msg: "required: delivered, duplicate, retry or rejected"}
	case err != nil || (o != Delivered && o != Duplicate && o != Retry && o != Rejected):
		return Rule{}, &RuleError{Field: "outcome", Msg: fmt.Sprintf("%q: want delivered, duplicate, retry or rejected", src.Outcome)}
	default:
		r.Outcome = o
	}
	for i, v := range src.Status {
		sr, ok := parseStatus(v)
		if !ok {
			return Rule{}, &RuleError{Field: "status", Item: i, Msg: fmt.Sprintf("%q: want a code like 200, a class like 2xx or a range like 200-204", v)}
		}
		r.ranges = append(r.ranges, sr)
	}
	if src.BodyMatch != "" {
		re, err := compileAt("body_match", src.BodyMatch)
		if err != nil {
			return Rule{}, err
		}
		r.body = re
	}
	for _, h := range src.HeaderMatch {
		field := "header_match." + h[0]
		re, err := compileAt(field, h[1])
		if err != nil {
			return Rule{}, err
		}
		r.headers = append(r.headers, headerMatch{name: http.CanonicalHeaderKey(h[0]), re: re})
	}
	r.desc = r.describe()
	return r, nil
}

// compileAt compiles expr; its error says where in expr the fault is,
// when regexp names the part it refused.
func compileAt(field, expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(expr)
	if err == nil {
		return re, nil
	}
	e := &RuleError{Field: field, Msg: err.Error()}
	// regexp/syntax errors end with the refused part: "…: `(?<`".
	if i := strings.LastIndex(e.Msg, ": `"); i >= 0 {
		part := strings.TrimSuffix(e.Msg[i+3:], "`")
		if j := strings.Index(expr, part); j >= 0 && part != "" {
			e.Offset = j
		}
	}
	return nil, e
}

// Match reports whether the rule recognises r.
func (ru *Rule) Match(r Result) bool {
	if r.StatusCode == 0 {
		return false
	}
	if len(ru.ranges) > 0 {
		ok := false
		for _, sr := range ru.ranges {
			if r.StatusCode >= sr.lo && r.StatusCode <= sr.hi {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if ru.body != nil && !ru.body.Match(r.Body) {
		return false
	}
	for _, h := range ru.headers {
		vs, ok := r.Header[h.name]
		if !ok {
			return false
		}
		matched := false
		for _, v := range vs {
			if h.re.MatchString(v) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	return true
}

// String describes the rule for `partners test` and attempt records:
// `responses[0] (status 200, body_match "success=false")`.
func (ru *Rule) String() string { return ru.desc }

func (ru *Rule) describe() string {
	var parts []string
	if len(ru.ranges) > 0 {
		s := make([]string, len(ru.ranges))
		for i, sr := range ru.ranges {
			s[i] = sr.String()
		}
		parts = append(parts, "status "+strings.Join(s, ","))
	}
	if ru.body != nil {
		parts = append(parts, "body_match "+strconv.Quote(ru.body.String()))
	}
	for _, h := range ru.headers {
		parts = append(parts, "header_match "+h.name+" "+strconv.Quote(h.re.String()))
	}
	if len(parts) == 0 {
		parts = append(parts, "any response")
	}
	return "responses[" + strconv.Itoa(ru.Index) + "] (" + strings.Join(parts, ", ") + ")"
}

func (sr statusRange) String() string {
	switch {
	case sr.lo == sr.hi:
		return strconv.Itoa(sr.lo)
	case sr.lo%100 == 0 && sr.hi == sr.lo+99:
		return strconv.Itoa(sr.lo/100) + "xx"
	}
	return strconv.Itoa(sr.lo) + "-" + strconv.Itoa(sr.hi)
}

// WithResponses returns s with rules evaluated, in order, before it:
// the first rule that matches an answer decides its outcome.
func (s Success) WithResponses(rules []Rule) Success {
	s.rules = rules
	return s
}

// Responses returns the rules set with [Success.WithResponses].
func (s Success) Responses() []Rule { return s.rules }

// classifyRules is step 2 of Classify: the first rule matching r, if any.
func (s Success) classifyRules(r Result, reason string, now time.Time) (Decision, bool) {
	for i := range s.rules {
		ru := &s.rules[i]
		if !ru.Match(r) {
			continue
		}
		d := Decision{Outcome: ru.Outcome, Rule: ru.desc, Reason: reason + ", " + ru.desc + " matched"}
		if ru.Outcome == Retry {
			d.RetryAfter, _ = ParseRetryAfter(r.Header.Get("Retry-After"), now)
		}
		return d, true
	}
	return Decision{}, false
}
