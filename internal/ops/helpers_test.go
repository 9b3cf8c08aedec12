package ops_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
)

// retryYAML is one partner with short retry intervals; RETRY and TIMEOUT
// are replaced per test.
const retryYAML = `
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

const shortRetry = "{max_attempts: 3, initial_interval: 100ms, max_interval: 500ms, multiplier: 2}"

type retryBundle struct {
	stack   *stacktest.Stack
	partner *stacktest.Partner
}

// setupRetry starts a stack whose partner p1 answers with respond.
func setupRetry(t *testing.T, retry, timeout string, respond func(n int, w http.ResponseWriter, r *http.Request)) retryBundle {
	t.Helper()
	p := stacktest.NewPartner(t)
	p.Respond = respond
	yaml := strings.NewReplacer("PARTNER", p.URL, "RETRY", retry, "TIMEOUT", timeout).Replace(retryYAML)
	return retryBundle{stack: stacktest.New(t, yaml, stacktest.Options{}), partner: p}
}

func (b retryBundle) enqueue(t *testing.T, id string) string {
	t.Helper()
	rc, err := b.stack.Client.Enqueue(context.Background(), &event.Event{ID: id, Name: "install"})
	require.NoError(t, err)
	require.Len(t, rc.Deliveries, 1)
	return rc.Deliveries[0].ID
}

func (b retryBundle) attempts(t *testing.T, id string) []store.Attempt {
	t.Helper()
	a, err := b.stack.Store.Attempts(context.Background(), id)
	require.NoError(t, err)
	return a
}

func statusSequence(codes ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(n, len(codes))-1])
		_, _ = w.Write([]byte("answer " + http.StatusText(codes[min(n, len(codes))-1])))
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}
