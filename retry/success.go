package retry

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Success is a partner's `success:` rule: which HTTP statuses mean the
// postback was accepted, and optionally a body pattern that turns an
// accepted status into a failure (`body_not_match`, for partners that answer
// 200 {"status":"error"}).
//
// The zero Success accepts any 2xx and does not look at the body. A Success
// is immutable after [ParseSuccess] and safe for concurrent use.
type Success struct {
	ranges       []statusRange // empty means 200-299
	bodyNotMatch *regexp.Regexp
	rules        []Rule // responses:, evaluated first
}

type statusRange struct{ lo, hi int }

// ParseSuccess builds a Success from the config. Each status is a code
// ("200"), a class ("2xx") or an inclusive range ("200-204"); none means any
// 2xx. bodyNotMatch is a Go regexp; empty means the body is not checked.
// Errors name the field as in the config, e.g.
// `success.status: "2x": want a code like 200 or a class like 2xx`.
func ParseSuccess(statuses []string, bodyNotMatch string) (Success, error) {
	var s Success
	for _, v := range statuses {
		r, ok := parseStatus(v)
		if !ok {
			return Success{}, fmt.Errorf("success.status: %q: want a code like 200, a class like 2xx or a range like 200-204", v)
		}
		s.ranges = append(s.ranges, r)
	}
	if bodyNotMatch != "" {
		re, err := regexp.Compile(bodyNotMatch)
		if err != nil {
			return Success{}, fmt.Errorf("success.body_not_match: %w", err)
		}
		s.bodyNotMatch = re
	}
	return s, nil
}

func parseStatus(v string) (statusRange, bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	if len(v) == 3 && v[1:] == "xx" && v[0] >= '1' && v[0] <= '5' {
		lo := int(v[0]-'0') * 100
		return statusRange{lo, lo + 99}, true
	}
	if a, b, ok := strings.Cut(v, "-"); ok {
		lo, okLo := parseCode(strings.TrimSpace(a))
		hi, okHi := parseCode(strings.TrimSpace(b))
		return statusRange{lo, hi}, okLo && okHi && lo <= hi
	}
	c, ok := parseCode(v)
	return statusRange{c, c}, ok
}

func parseCode(v string) (int, bool) {
	if len(v) != 3 || !isDigits(v) {
		return 0, false
	}
	c, _ := strconv.Atoi(v)
	return c, c >= 100 && c <= 599
}

// Match reports whether a response with this status and body counts as
// delivered.
func (s Success) Match(status int, body []byte) bool {
	return s.statusOK(status) && !s.bodyMatched(body)
}

func (s Success) statusOK(status int) bool {
	if len(s.ranges) == 0 {
		return status >= 200 && status <= 299
	}
	for _, r := range s.ranges {
		if status >= r.lo && status <= r.hi {
			return true
		}
	}
	return false
}

func (s Success) bodyMatched(body []byte) bool {
	return s.bodyNotMatch != nil && s.bodyNotMatch.Match(body)
}
