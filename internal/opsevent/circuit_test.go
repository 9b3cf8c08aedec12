package opsevent_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/opsevent"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/retry"
)

const circuitYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
ops:
  webhooks:
    - url: "OPS/events"
      secrets: ["SECRET"]
partners:
  - id: wobbly
    match: all
    url: "PARTNER/pb?click={click_id}"
    retry: {max_attempts: 1}
`

// A partner whose circuit opens is reported failing once, and recovered
// at its first success.
func TestEvents_CircuitOpenAndRecovery(t *testing.T) {
	t.Parallel()
	ok := &atomic.Bool{}
	partner := stacktest.NewPartner(t)
	partner.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		if !ok.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	}
	rcv := newReceiver(t)
	yaml := strings.NewReplacer("OPS", rcv.URL, "PARTNER", partner.URL, "SECRET", opsSecret).Replace(circuitYAML)
	s := stacktest.New(t, yaml, stacktest.Options{Concurrency: 1,
		Isolation: delivery.GateConfig{BreakerFailures: 2, BreakerOpenFor: 500 * time.Millisecond}})
	ctx := context.Background()
	send := func(i int) string {
		rc, err := s.Client.Enqueue(ctx, &event.Event{ID: fmt.Sprintf("cb-%d", i), Name: "install", ClickID: "c"})
		require.NoError(t, err)
		return rc.Deliveries[0].ID
	}
	send(0)
	send(1)
	s.WaitDLQSize(t, "wobbly", 2, 15*time.Second)
	failing := rcv.wait(t, opsevent.TypeFailing, 20*time.Second)
	require.Equal(t, "circuit_open", failing.Data.Cause)
	require.Equal(t, "wobbly", failing.Data.Partner)

	ok.Store(true)
	s.WaitStatus(t, send(2), retry.StatusDelivered, 20*time.Second)
	recovered := rcv.wait(t, opsevent.TypeRecovered, 20*time.Second)
	require.Equal(t, failing.Timestamp.UnixMilli(), recovered.Data.FailingSince.UnixMilli())
	require.Zero(t, rcv.bad)
}
