package delivery_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// A partner's require that the event does not meet: the worker records the
// delivery as skipped with the reason and the partner hears nothing.
func TestWorker_RequireSkips(t *testing.T) {
	t.Parallel()
	partner := stacktest.NewPartner(t)
	s := stacktest.New(t, `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: acme
    require: [click_id]
    url: "`+partner.URL+`/c?click_id={click_id}"
`, stacktest.Options{})

	status, body := s.Post(t, "/v1/events", "application/json", `{"id":"evt-no-click","name":"install","attribution":{"partner":"acme"}}`)
	require.Equal(t, http.StatusAccepted, status, body)
	skipped := wire.DeliveryID("evt-no-click", "acme")
	rec := s.WaitStatus(t, skipped, retry.StatusSkipped, 10*time.Second)
	require.Equal(t, "require: click_id is missing", rec.Reason)
	require.Zero(t, rec.Attempts)

	// A second event that meets it is delivered: the partner's only request.
	status, body = s.Post(t, "/v1/events", "application/json", `{"id":"evt-click","name":"install","click_id":"c1","attribution":{"partner":"acme"}}`)
	require.Equal(t, http.StatusAccepted, status, body)
	s.WaitStatus(t, wire.DeliveryID("evt-click", "acme"), retry.StatusDelivered, 10*time.Second)
	got := partner.Requests()
	require.Len(t, got, 1)
	require.Equal(t, "/c?click_id=c1", got[0].URL)
}
