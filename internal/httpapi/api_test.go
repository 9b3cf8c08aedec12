package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const configYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: acme_ads
    events: [install, purchase]
    url: "PARTNER/c?click_id={click_id}&goal={event|map:install=1,purchase=2}&sum={revenue|default:0}&cur={currency}&dlv={delivery_id}"
`

type bundle struct {
	stack   *stacktest.Stack
	partner *stacktest.Partner
}

func setup(t *testing.T) bundle { return setupOn(t, false) }

// setupOn serves the API on net/http when netHTTP is set, else as
// `postback api` does (see stacktest.Transports).
func setupOn(t *testing.T, netHTTP bool) bundle {
	t.Helper()
	p := stacktest.NewPartner(t)
	s := stacktest.New(t, strings.ReplaceAll(configYAML, "PARTNER", p.URL), stacktest.Options{NetHTTP: netHTTP})
	return bundle{stack: s, partner: p}
}

// onBoth runs test once on each way the API is served.
func onBoth(t *testing.T, test func(t *testing.T, netHTTP bool)) {
	for _, tr := range stacktest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			test(t, tr.NetHTTP)
		})
	}
}

func TestPostEvent_DeliversExactURLOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, body := b.stack.Post(t, "/v1/events", "application/json", `{"id":"evt-1","name":"purchase","click_id":"abc 1&x=2",
		"attribution":{"partner":"acme_ads"},"revenue":{"amount":"1.99","currency":"USD"}}`)
	require.Equal(t, http.StatusAccepted, status, body)
	require.Equal(t, "evt-1", body["event_id"])
	deliveries := body["deliveries"].([]any)
	require.Len(t, deliveries, 1)
	id := deliveries[0].(map[string]any)["id"].(string)
	require.Regexp(t, `^dlv_[0-9a-f]{32}$`, id)

	b.stack.WaitStatus(t, id, store.StatusDelivered, 10*time.Second)
	got := b.partner.Requests()
	require.Len(t, got, 1)
	want := "/c?click_id=" + url.QueryEscape("abc 1&x=2") + "&goal=2&sum=1.99&cur=USD&dlv=" + id
	require.Equal(t, want, got[0].URL)
	require.Equal(t, http.MethodGet, got[0].Method)
	require.Equal(t, id, got[0].Header.Get("Idempotency-Key"))
	require.Equal(t, "postback/dev", got[0].Header.Get("User-Agent"))

	// Nothing left in the queues, and nothing archived by asynq (the task
	// leaves the active list just after its record says delivered).
	require.Eventually(t, func() bool {
		pending, active, scheduled, retry, archived := b.stack.QueueSizes(t)
		return pending+active+scheduled+retry+archived == 0
	}, 5*time.Second, 10*time.Millisecond)
	require.Len(t, b.partner.Requests(), 1)
}

func TestPostEvent_NoMatchingPartnerSendsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, ev := range []string{
		`{"id":"evt-2","name":"purchase","attribution":{"partner":"other"}}`,   // attributed elsewhere
		`{"id":"evt-3","name":"sign_up","attribution":{"partner":"acme_ads"}}`, // event not listed
	} {
		status, body := b.stack.Post(t, "/v1/events", "application/json", ev)
		require.Equal(t, http.StatusAccepted, status, body)
		require.Empty(t, body["deliveries"])
	}
	pending, active, scheduled, retry, archived := b.stack.QueueSizes(t)
	require.Zero(t, pending+active+scheduled+retry+archived)
	// A matching event sent after them is the only one the partner sees.
	status, body := b.stack.Post(t, "/v1/events", "application/json", `{"id":"evt-4","name":"install","click_id":"c","attribution":{"partner":"acme_ads"}}`)
	require.Equal(t, http.StatusAccepted, status, body)
	reqs := b.partner.WaitRequests(t, 1, 10*time.Second)
	require.Contains(t, reqs[0].URL, "click_id=c&goal=1")
}

func TestPostEvent_DuplicateIsNotSentTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ev := `{"id":"evt-dup","name":"install","click_id":"c","attribution":{"partner":"acme_ads"}}`
	status, first := b.stack.Post(t, "/v1/events", "application/json", ev)
	require.Equal(t, http.StatusAccepted, status)
	id := first["deliveries"].([]any)[0].(map[string]any)["id"].(string)
	b.stack.WaitStatus(t, id, store.StatusDelivered, 10*time.Second)
	status, again := b.stack.Post(t, "/v1/events", "application/json", ev)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, true, again["duplicate"])
	require.Equal(t, first["deliveries"], again["deliveries"])
	require.Len(t, b.partner.Requests(), 1)
}

func TestPostEvent_BadInput(t *testing.T) {
	t.Parallel()
	onBoth(t, testPostEventBadInput)
}

func testPostEventBadInput(t *testing.T, netHTTP bool) {
	b := setupOn(t, netHTTP)
	cases := []struct {
		name, ct, body string
		status         int
		code, field    string
	}{
		{"malformed JSON", "application/json", `{"id":"x",`, 400, "invalid_event", ""},
		{"missing id", "application/json", `{"name":"install"}`, 400, "invalid_event", "id"},
		{"missing name", "application/json", `{"id":"x"}`, 400, "invalid_event", "name"},
		{"bad name", "application/json", `{"id":"x","name":"Purchase!"}`, 400, "invalid_event", "name"},
		{"unknown field", "application/json", `{"id":"x","name":"install","clickid":"c"}`, 400, "invalid_event", "clickid"},
		{"bad revenue", "application/json", `{"id":"x","name":"install","revenue":{"amount":"1,99"}}`, 400, "invalid_event", "revenue.amount"},
		{"bad timestamp", "application/json", `{"id":"x","name":"install","timestamp":"yesterday"}`, 400, "invalid_event", "timestamp"},
		{"wrong content type", "text/plain", `{"id":"x","name":"install"}`, 415, "unsupported_media_type", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := b.stack.Post(t, "/v1/events", tc.ct, tc.body)
			require.Equal(t, tc.status, status, body)
			e := body["error"].(map[string]any)
			require.Equal(t, tc.code, e["code"])
			require.NotEmpty(t, e["message"])
			if tc.field != "" {
				require.Equal(t, tc.field, e["field"])
			}
		})
	}
	require.Empty(t, b.partner.Requests())
}

func TestAuth_WrongOrMissingKey(t *testing.T) {
	t.Parallel()
	onBoth(t, testAuthWrongOrMissingKey)
}

func testAuthWrongOrMissingKey(t *testing.T, netHTTP bool) {
	b := setupOn(t, netHTTP)
	for _, auth := range []string{"", "Bearer wrong", "Basic " + stacktest.APIKey, "Bearer " + stacktest.APIKey + "x"} {
		req, _ := http.NewRequest(http.MethodPost, b.stack.API.URL+"/v1/events", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, auth)
	}
}
