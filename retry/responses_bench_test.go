package retry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/postbackhq/postback/retry"
)

// BenchmarkSuccess_Classify measures an answer's classification with no
// rules, and with a TUNE-like pair of rules where the second matches, over
// a short body and over the 64 KiB a worker keeps at most.
func BenchmarkSuccess_Classify(b *testing.B) {
	now := time.Now()
	short := retry.Result{StatusCode: 200, Body: []byte("success=false; err_msg=Invalid Trans. ID #1a2b3c;")}
	long := retry.Result{StatusCode: 200, Body: []byte("success=false; " + strings.Repeat("x", 64<<10-15))}
	var rs []retry.Rule
	for i, src := range []retry.RuleSource{
		{Status: []string{"200"}, BodyMatch: `^\s*success=true`, Outcome: "delivered"},
		{Status: []string{"200"}, BodyMatch: `^\s*success=false`, Outcome: "rejected"},
	} {
		r, err := retry.ParseRule(i, src)
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, r)
	}
	plain, ruled := retry.Success{}, retry.Success{}.WithResponses(rs)
	for _, bc := range []struct {
		name string
		s    retry.Success
		r    retry.Result
	}{
		{"no-rules", plain, short}, {"rules", ruled, short}, {"rules-64KiB", ruled, long},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = bc.s.Classify(bc.r, now)
			}
		})
	}
}
