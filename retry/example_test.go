package retry_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/postbackhq/postback/retry"
)

// The default policy waits 30s, 1m, 2m... up to 1h between attempts. A
// random source of 0.5 shows the intervals without jitter.
func ExamplePolicy_Delay() {
	p := retry.Policy{} // the defaults
	noJitter := func() float64 { return 0.5 }
	for n := 1; n <= 9; n++ {
		fmt.Printf("after attempt %d: wait %s\n", n, p.Delay(n, noJitter))
	}
	// Output:
	// after attempt 1: wait 30s
	// after attempt 2: wait 1m0s
	// after attempt 3: wait 2m0s
	// after attempt 4: wait 4m0s
	// after attempt 5: wait 8m0s
	// after attempt 6: wait 16m0s
	// after attempt 7: wait 32m0s
	// after attempt 8: wait 1h0m0s
	// after attempt 9: wait 1h0m0s
}

// A worker classifies each attempt, then asks the policy when to retry.
func ExampleSuccess_Classify() {
	success, err := retry.ParseSuccess([]string{"2xx"}, "(?i)error")
	if err != nil {
		panic(err)
	}
	policy := retry.Policy{MaxAttempts: 5}
	first := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	now := first.Add(time.Minute)
	noJitter := func() float64 { return 0.5 }

	for _, r := range []retry.Result{
		{StatusCode: 200, Body: []byte(`{"ok":true}`)},
		{StatusCode: 200, Body: []byte(`{"status":"error"}`)},
		{StatusCode: 503, Header: http.Header{"Retry-After": {"300"}}},
		{StatusCode: 404},
	} {
		d := success.Classify(r, now)
		fmt.Printf("%s (%s)", d.Outcome, d.Reason)
		if d.Outcome == retry.Retry {
			delay, exhausted := policy.Next(1, first, now, d.RetryAfter, noJitter)
			fmt.Printf(": next in %s, exhausted=%t", delay, exhausted)
		}
		fmt.Println()
	}
	// Output:
	// delivered (HTTP 200)
	// retry (HTTP 200 but body matched (?i)error): next in 30s, exhausted=false
	// retry (HTTP 503): next in 5m0s, exhausted=false
	// rejected (HTTP 404)
}
