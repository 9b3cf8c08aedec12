package retry_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/retry"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		v      string
		want   time.Duration
		wantOK bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"zero", "0", 0, true},
		{"spaces", " 30 ", 30 * time.Second, true},
		{"imf-fixdate", "Wed, 25 Nov 2026 18:01:30 GMT", 90 * time.Second, true},
		{"rfc850", "Wednesday, 25-Nov-26 18:01:30 GMT", 90 * time.Second, true},
		{"asctime", "Wed Nov 25 18:01:30 2026", 90 * time.Second, true},
		{"past date", "Wed, 25 Nov 2026 17:00:00 GMT", 0, true},
		{"huge seconds", "99999999999999999999999", time.Duration(math.MaxInt64), true},
		{"seconds just past a Duration", "9223372037", time.Duration(math.MaxInt64), true},
		{"largest Duration seconds", "9223372036", 9223372036 * time.Second, true},
		{"far date", "Fri, 31 Dec 9999 23:59:59 GMT", time.Duration(math.MaxInt64), true},
		{"empty", "", 0, false},
		{"garbage", "soon", 0, false},
		{"negative", "-5", 0, false},
		{"plus sign", "+5", 0, false},
		{"fraction", "1.5", 0, false},
		{"date without zone", "2026-11-25T18:01:30", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := retry.ParseRetryAfter(tt.v, now)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
}
