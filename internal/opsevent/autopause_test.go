package opsevent_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/opsevent"
	"github.com/postbackhq/postback/internal/stacktest"
)

var opsSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("ops-secret-0123456789abcdef0123"))

// receiver is an ops webhook: it keeps every event it verified with the
// reference Standard Webhooks library, and counts those that did not.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []opsevent.Event
	bad    int
	fail   bool // answer 503 to everything
}

func newReceiver(t *testing.T) *receiver {
	wh, err := standardwebhooks.NewWebhook(opsSecret)
	require.NoError(t, err)
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if wh.Verify(body, req.Header) != nil {
			r.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev opsevent.Event
		if json.Unmarshal(body, &ev) != nil || req.Header.Get("webhook-id") != ev.ID {
			r.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.events = append(r.events, ev)
	}))
	t.Cleanup(r.Close)
	return r
}

// wait returns the first verified event of type typ, failing after timeout.
func (r *receiver) wait(t *testing.T, typ string, timeout time.Duration) opsevent.Event {
	t.Helper()
	var found opsevent.Event
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, ev := range r.events {
			if ev.Type == typ {
				found = ev
				return true
			}
		}
		return false
	}, timeout, 50*time.Millisecond, "no %s event; got %v (%d unverified)", typ, r.types(), r.bad)
	return found
}

func (r *receiver) types() []string {
	var out []string
	for _, ev := range r.events {
		out = append(out, ev.Type)
	}
	return out
}

const autoPauseYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
ops:
  webhooks:
    - url: "OPS/events"
      secrets: ["SECRET"]
partners:
  - id: flaky
    match: all
    url: "PARTNER/pb?click={click_id}"
    retry: {max_attempts: 10, initial_interval: 1s, max_interval: 1s}
    auto_pause: {consecutive_failures: 4}
`

// Four failed attempts in a row, from deliveries running at once, pause
// the partner: partner.failing at two, partner.paused at four, each
// signed so that the reference library verifies it; nothing more is sent
// while paused, and a resume raises partner.resumed.
func TestAutoPause_RaisesSignedEvents(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	partner.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}
	rcv := newReceiver(t)
	yaml := strings.NewReplacer("OPS", rcv.URL, "PARTNER", partner.URL, "SECRET", opsSecret).Replace(autoPauseYAML)
	s := stacktest.New(t, yaml, stacktest.Options{})
	ctx := context.Background()
	for i := range 6 {
		_, err := s.Client.Enqueue(ctx, &event.Event{ID: fmt.Sprintf("ap-%d", i), Name: "install", ClickID: fmt.Sprintf("c%d", i)})
		require.NoError(t, err)
	}

	failing := rcv.wait(t, opsevent.TypeFailing, 20*time.Second)
	require.Equal(t, "flaky", failing.Data.Partner)
	require.Equal(t, "auto_pause_half_way", failing.Data.Cause)
	require.Equal(t, 2, failing.Data.ConsecutiveFailures)

	paused := rcv.wait(t, opsevent.TypePaused, 20*time.Second)
	require.Equal(t, "flaky", paused.Data.Partner)
	require.Equal(t, "auto", paused.Data.By)
	require.Equal(t, "auto: 4 consecutive failures: HTTP 503", paused.Data.Reason)
	require.Equal(t, 4, paused.Data.ConsecutiveFailures)

	pauses, err := ops.Paused(ctx, s.Redis)
	require.NoError(t, err)
	require.Equal(t, "auto", pauses["flaky"].By, "the pause is the one every worker holds deliveries for")
	require.Equal(t, paused.Data.Since.UnixMilli(), pauses["flaky"].Since.UnixMilli())

	// Held: once the workers' copy has the pause (a second), nothing is sent.
	time.Sleep(1500 * time.Millisecond)
	sent := len(partner.Requests())
	time.Sleep(3 * time.Second)
	require.Equal(t, sent, len(partner.Requests()), "a paused partner gets nothing")

	was, err := ops.ResumePartner(ctx, s.Redis, s.Live.Load(), "flaky", time.Now())
	require.NoError(t, err)
	require.True(t, was)
	resumed := rcv.wait(t, opsevent.TypeResumed, 20*time.Second)
	require.Equal(t, "flaky", resumed.Data.Partner)
	require.NotEqual(t, paused.ID, resumed.ID)
	require.Zero(t, rcv.bad, "every event verifies")
}
