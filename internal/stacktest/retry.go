package stacktest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/store"
)

// RetryYAML is one partner, p1, with a retry policy and timeout that
// NewRetry fills in.
const RetryYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: p1
    match: all
    url: "PARTNER/c?e={event_id}&n={attempt}"
    timeout: TIMEOUT
    retry: RETRY
`

// ShortRetry is a retry policy that gives up within a second.
const ShortRetry = "{max_attempts: 3, initial_interval: 100ms, max_interval: 500ms, multiplier: 2}"

// Retry is a stack whose one partner, p1, answers as a test says.
type Retry struct {
	Stack   *Stack
	Partner *Partner
}

// NewRetry starts a stack of RetryYAML with policy retry and timeout,
// whose partner p1 answers with respond.
func NewRetry(t *testing.T, retry, timeout string, respond func(n int, w http.ResponseWriter, r *http.Request)) Retry {
	t.Helper()
	p := NewPartner(t)
	p.Respond = respond
	yaml := strings.NewReplacer("PARTNER", p.URL, "RETRY", retry, "TIMEOUT", timeout).Replace(RetryYAML)
	return Retry{Stack: New(t, yaml, Options{}), Partner: p}
}

// Enqueue enqueues an install with event id id and returns its one
// delivery's id.
func (b Retry) Enqueue(t *testing.T, id string) string {
	t.Helper()
	rc, err := b.Stack.Client.Enqueue(context.Background(), &event.Event{ID: id, Name: "install"})
	if err != nil || len(rc.Deliveries) != 1 {
		t.Fatalf("enqueue %s: %v, %+v", id, err, rc)
	}
	return rc.Deliveries[0].ID
}

// Attempts returns delivery id's attempt history.
func (b Retry) Attempts(t *testing.T, id string) []store.Attempt {
	t.Helper()
	a, err := b.Stack.Store.Attempts(context.Background(), id)
	if err != nil {
		t.Fatalf("attempts of %s: %v", id, err)
	}
	return a
}

// StatusSequence answers the nth request with codes[n-1], and every one
// after the last with the last.
func StatusSequence(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(n, len(codes))-1])
		_, _ = w.Write([]byte("answer " + http.StatusText(codes[min(n, len(codes))-1])))
	}
}
