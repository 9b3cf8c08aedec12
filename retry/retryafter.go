package retry

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfterSeconds is the largest delta-seconds a time.Duration holds.
const maxRetryAfterSeconds = math.MaxInt64 / int64(time.Second)

// ParseRetryAfter reads a Retry-After header value (RFC 9110 §10.2.3):
// delta-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT",
// also the obsolete RFC 850 and asctime forms), relative to now.
//
// ok is false when v is empty or invalid, including a signed number such as
// "-5", which the grammar does not allow. A date in the past gives 0 and
// ok=true. A delay too large for a time.Duration saturates at its maximum;
// [Policy.Next] caps it at MaxInterval anyway.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > maxRetryAfterSeconds {
			// Only all-digit strings get here, so the error is ErrRange.
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
