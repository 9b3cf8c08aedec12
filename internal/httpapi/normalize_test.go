package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// normalizeYAML renders every field intake normalises, the email hashed as
// ad networks match it.
const normalizeYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: ids
    match: all
    url: "PARTNER/c?e={email|sha256}&idfa={idfa}&idfv={idfv}&gaid={gaid}&ip={ip}&country={country}&cuid={customer_user_id}"
`

// sloppy is the conversion of the acceptance criterion: an email with
// spaces and capitals, a lower-case IDFA, an IP that does not parse and a
// three-letter country.
const sloppy = `{"id":"ID","name":"purchase","device":{"idfa":"6d92078a-8246-4ba4-ae5b-76104861e7dc","ip":"999.1.1.1","country":"usa"},` +
	`"user":{"email":" A@Example.com ","customer_user_id":" u1 "},"consent":{"granted":true}}`

func setupNormalize(t *testing.T, netHTTP bool, yaml string) (*stacktest.Stack, *stacktest.Partner) {
	t.Helper()
	p := stacktest.NewPartner(t)
	return stacktest.New(t, strings.ReplaceAll(yaml, "PARTNER", p.URL), stacktest.Options{NetHTTP: netHTTP}), p
}

func sloppyEvent(id string) string { return strings.Replace(sloppy, `"ID"`, `"`+id+`"`, 1) }

func warningsOf(t *testing.T, body map[string]any) []any {
	t.Helper()
	w, _ := body["warnings"].([]any)
	return w
}

// TestPostEvent_NeverRefusesAnOptionalField: in the default mode the
// conversion is stored (202), normalised, without the fields it could
// not use, and the answer names them; the partner gets the hash of the
// trimmed, lowercased address.
func TestPostEvent_NeverRefusesAnOptionalField(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, p := setupNormalize(t, netHTTP, normalizeYAML)
		status, body := s.Post(t, "/v1/events", "application/json", sloppyEvent("n-1"))
		require.Equal(t, http.StatusAccepted, status, body)
		require.Equal(t, []any{
			map[string]any{"field": "device.ip", "message": "not an IPv4 or IPv6 address; dropped"},
			map[string]any{"field": "device.country", "message": "not an ISO 3166-1 alpha-2 code; dropped"},
		}, warningsOf(t, body))

		id := wire.DeliveryID("n-1", "ids")
		s.WaitStatus(t, id, retry.StatusDelivered, 10*time.Second)
		sum := sha256.Sum256([]byte("a@example.com"))
		require.Equal(t, "/c?e="+hex.EncodeToString(sum[:])+"&idfa=6D92078A-8246-4BA4-AE5B-76104861E7DC&idfv=&gaid=&ip=&country=&cuid=u1",
			p.Requests()[0].URL)

		// The repeat answers the stored receipt, which keeps no warnings.
		status, body = s.Post(t, "/v1/events", "application/json", sloppyEvent("n-1"))
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, true, body["duplicate"])
		require.NotContains(t, body, "warnings")

		// A clean event has no warnings key at all.
		status, body = s.Post(t, "/v1/events", "application/json", `{"id":"n-2","name":"install","device":{"gaid":" 38400000-8CF0-11BD-B23E-10B96E40000D ","idfv":"6d92078a-8246-4ba4-ae5b-76104861e7dc"}}`)
		require.Equal(t, http.StatusAccepted, status, body)
		require.NotContains(t, body, "warnings")
		s.WaitStatus(t, wire.DeliveryID("n-2", "ids"), retry.StatusDelivered, 10*time.Second)
		require.Equal(t, "/c?e=&idfa=&idfv=6D92078A-8246-4BA4-AE5B-76104861E7DC&gaid=38400000-8cf0-11bd-b23e-10b96e40000d&ip=&country=&cuid=",
			p.Requests()[1].URL)
	})
}

// TestPostBatch_WarningsPerResult: each stored event of a batch names its
// own dropped fields; events refused in every mode stay rejected.
func TestPostBatch_WarningsPerResult(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, p := setupNormalize(t, netHTTP, normalizeYAML)
		status, body := s.Post(t, "/v1/events/batch", "application/x-ndjson", strings.Join([]string{
			sloppyEvent("b-1"),
			`{"id":"b-2","name":"install","user":{"email":"nobody"},"device":{"gaid":"g","idfv":"v"}}`,
			`{"id":"b-3","name":"install","device":{"country":" fr "}}`,
			`{"id":"b-4","name":"Install!","user":{"email":"nobody"}}`,
		}, "\n"))
		require.Equal(t, http.StatusOK, status, body)
		results := body["results"].([]any)
		fields := func(i int) []string {
			var out []string
			for _, w := range warningsOf(t, results[i].(map[string]any)) {
				out = append(out, w.(map[string]any)["field"].(string))
			}
			return out
		}
		require.Equal(t, "accepted", results[0].(map[string]any)["status"])
		require.Equal(t, []string{"device.ip", "device.country"}, fields(0))
		require.Equal(t, "accepted", results[1].(map[string]any)["status"])
		require.Equal(t, []string{"device.idfv", "device.gaid", "user.email"}, fields(1))
		require.Equal(t, "accepted", results[2].(map[string]any)["status"])
		require.Nil(t, fields(2))
		require.Equal(t, "rejected", results[3].(map[string]any)["status"])
		require.Equal(t, "name", results[3].(map[string]any)["error"].(map[string]any)["field"])

		p.WaitRequests(t, 3, 10*time.Second)
		urls := map[string]bool{}
		for _, r := range p.Requests() {
			urls[r.URL] = true
		}
		require.True(t, urls["/c?e=&idfa=&idfv=&gaid=&ip=&country=FR&cuid="], "%v", urls)
	})
}

// TestPostEvent_Strict: api.strict refuses what the default mode drops,
// with 400 and the field, as intake did before it normalised; what
// normalising fixes is accepted.
func TestPostEvent_Strict(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		s, p := setupNormalize(t, netHTTP, strings.Replace(normalizeYAML, "api:\n", "api:\n  strict: true\n", 1))
		for body, field := range map[string]string{
			sloppyEvent("s-1"): "device.ip",
			`{"id":"s-2","name":"install","device":{"idfa":"nope"}}`:   "device.idfa",
			`{"id":"s-3","name":"install","device":{"idfv":"nope"}}`:   "device.idfv",
			`{"id":"s-4","name":"install","device":{"gaid":"nope"}}`:   "device.gaid",
			`{"id":"s-5","name":"install","device":{"country":"usa"}}`: "device.country",
			`{"id":"s-6","name":"install","user":{"email":"a@"}}`:      "user.email",
		} {
			status, answer := s.Post(t, "/v1/events", "application/json", body)
			require.Equal(t, http.StatusBadRequest, status, body)
			e := answer["error"].(map[string]any)
			require.Equal(t, "invalid_event", e["code"])
			require.Equal(t, field, e["field"], body)
		}
		status, body := s.Post(t, "/v1/events/batch", "application/json", `[`+sloppyEvent("s-7")+`,{"id":"s-8","name":"install","device":{"country":"de"}}]`)
		require.Equal(t, http.StatusOK, status, body)
		results := body["results"].([]any)
		require.Equal(t, "rejected", results[0].(map[string]any)["status"])
		require.Equal(t, "device.ip", results[0].(map[string]any)["error"].(map[string]any)["field"])
		require.Equal(t, "accepted", results[1].(map[string]any)["status"])

		status, body = s.Post(t, "/v1/events", "application/json", `{"id":"s-9","name":"install","user":{"email":" A@Example.com "}}`)
		require.Equal(t, http.StatusAccepted, status, body)
		require.NotContains(t, body, "warnings")
		s.WaitStatus(t, wire.DeliveryID("s-9", "ids"), retry.StatusDelivered, 10*time.Second)
		sum := sha256.Sum256([]byte("a@example.com"))
		var urls []string
		for _, r := range p.WaitRequests(t, 2, 10*time.Second) {
			urls = append(urls, r.URL)
		}
		require.Contains(t, urls, "/c?e="+hex.EncodeToString(sum[:])+"&idfa=&idfv=&gaid=&ip=&country=&cuid=")
	})
}

// TestMetrics_FieldsDropped counts each dropped field of a stored event
// once; a duplicate and a refused event count nothing. Not parallel: the
// counter is the process's.
func TestMetrics_FieldsDropped(t *testing.T) {
	s, _ := setupNormalize(t, false, normalizeYAML)
	scrape := func() map[string]float64 {
		resp, err := http.Get(s.API.URL + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		out := map[string]float64{}
		for _, m := range regexp.MustCompile(`(?m)^postback_event_fields_dropped_total\{field="([^"]+)"\} (\S+)$`).FindAllStringSubmatch(string(b), -1) {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			out[m[1]] = v
		}
		return out
	}
	before := scrape()
	status, _ := s.Post(t, "/v1/events", "application/json", sloppyEvent("m-1"))
	require.Equal(t, http.StatusAccepted, status)
	status, _ = s.Post(t, "/v1/events", "application/json", sloppyEvent("m-1"))
	require.Equal(t, http.StatusOK, status)
	status, _ = s.Post(t, "/v1/events", "application/json", `{"id":"m-2","name":"Bad!","device":{"ip":"x"}}`)
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = s.Post(t, "/v1/events/batch", "application/json", `[`+sloppyEvent("m-3")+`,{"id":"m-4","name":"install","user":{"email":"x"}}]`)
	require.Equal(t, http.StatusOK, status)
	after := scrape()
	require.Equal(t, map[string]float64{"device.ip": 2, "device.country": 2, "user.email": 1}, map[string]float64{
		"device.ip":      after["device.ip"] - before["device.ip"],
		"device.country": after["device.country"] - before["device.country"],
		"user.email":     after["user.email"] - before["user.email"],
	})
}
