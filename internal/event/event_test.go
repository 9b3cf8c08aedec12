package event_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
)

// fullEvent has a value in each part of an event, as a backend sends it.
const fullEvent = `{"id": "evt-123", "name": "purchase", "timestamp": "2026-11-25T18:31:21Z", "app_id": "com.example.game",
 "click_id": "abc", "attribution": {"partner": "acme_ads", "campaign_id": "c1", "campaign": "winter",
 "adgroup_id": "", "adgroup": "", "creative_id": "", "creative": "", "site_id": "", "sub1": ""},
 "device": {"idfa": "", "idfv": "", "gaid": "", "android_id": "", "ip": "203.0.113.7",
 "user_agent": "", "os": "ios", "os_version": "18.1", "country": "US"},
 "user": {"customer_user_id": "u1", "email": "a@example.com"},
 "revenue": {"amount": "1.99", "currency": "USD"}, "consent": {"granted": true},
 "params": {"level": "7"}}`

var receipt = time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)

func TestDecodeEvent_FullEvent(t *testing.T) {
	t.Parallel()
	ev, err := event.DecodeEvent([]byte(fullEvent), receipt)
	require.NoError(t, err)
	require.Equal(t, "evt-123", ev.ID)
	require.Equal(t, "purchase", ev.Name)
	require.Equal(t, time.Date(2026, 11, 25, 18, 31, 21, 0, time.UTC), ev.Timestamp)
	require.Equal(t, "acme_ads", ev.Attribution.Partner)
	require.Equal(t, "203.0.113.7", ev.Device.IP)
	require.Equal(t, "a@example.com", ev.User.Email)
	require.Equal(t, event.Decimal("1.99"), ev.Revenue.Amount)
	require.True(t, ev.Consent.IsGranted())
	require.Equal(t, map[string]string{"level": "7"}, ev.Params)
}

func TestDecodeEvent_DefaultsAndLenientValues(t *testing.T) {
	t.Parallel()
	ev, err := event.DecodeEvent([]byte(`{"id":"e","name":"install","timestamp":"2026-11-25T19:31:21.5+01:00",
		"revenue":{"amount":12345678901234567.123456789012,"currency":"EUR"},"params":{"n":3,"ok":true,"gone":null}}`), receipt)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 25, 18, 31, 21, 5e8, time.UTC), ev.Timestamp, "converted to UTC")
	// A number keeps every digit: it is never carried as a float.
	require.Equal(t, event.Decimal("12345678901234567.123456789012"), ev.Revenue.Amount)
	b, err := json.Marshal(ev.Revenue)
	require.NoError(t, err)
	require.JSONEq(t, `{"amount":"12345678901234567.123456789012","currency":"EUR"}`, string(b))
	require.Equal(t, map[string]string{"n": "3", "ok": "true"}, ev.Params)

	ev, err = event.DecodeEvent([]byte(`{"id":"e","name":"install"}`), receipt)
	require.NoError(t, err)
	require.Equal(t, receipt, ev.Timestamp, "a missing timestamp is the receipt time")
}

func TestDecodeEvent_RefusalNamesTheField(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 129)
	cases := []struct {
		name, body, field string
	}{
		{"missing id", `{"name":"install"}`, "id"},
		{"long id", `{"id":"` + long + `","name":"install"}`, "id"},
		{"id with space", `{"id":"a b","name":"install"}`, "id"},
		{"missing name", `{"id":"x"}`, "name"},
		{"bad name", `{"id":"x","name":"Purchase!"}`, "name"},
		{"unknown top-level", `{"id":"x","name":"install","clickid":"c"}`, "clickid"},
		{"unknown in device", `{"id":"x","name":"install","device":{"os":"ios","idfaa":"y"}}`, "device.idfaa"},
		{"unknown in attribution", `{"id":"x","name":"install","attribution":{"campain":"w"}}`, "attribution.campain"},
		{"unknown in revenue", `{"id":"x","name":"install","revenue":{"amout":"1"}}`, "revenue.amout"},
		{"unknown in consent", `{"id":"x","name":"install","consent":{"given":true}}`, "consent.given"},
		{"unknown in user", `{"id":"x","name":"install","user":{"mail":"a@b.c"}}`, "user.mail"},
		{"wrong type nested", `{"id":"x","name":"install","device":{"os":7}}`, "device.os"},
		{"wrong type top", `{"id":"x","name":"install","click_id":["a"]}`, "click_id"},
		{"comma decimal", `{"id":"x","name":"install","revenue":{"amount":"1,99"}}`, "revenue.amount"},
		{"exponent", `{"id":"x","name":"install","revenue":{"amount":1e3}}`, "revenue.amount"},
		{"amount object", `{"id":"x","name":"install","revenue":{"amount":{"v":1}}}`, "revenue.amount"},
		{"currency without amount", `{"id":"x","name":"install","revenue":{"currency":"USD"}}`, "revenue.amount"},
		{"bad currency", `{"id":"x","name":"install","revenue":{"amount":"1","currency":"usd"}}`, "revenue.currency"},
		{"bad timestamp", `{"id":"x","name":"install","timestamp":"yesterday"}`, "timestamp"},
		{"numeric timestamp", `{"id":"x","name":"install","timestamp":1764095481}`, "timestamp"},
		{"long value", `{"id":"x","name":"install","user":{"customer_user_id":"` + strings.Repeat("u", 1025) + `"}}`, "user.customer_user_id"},
		{"nested param", `{"id":"x","name":"install","params":{"k":{"a":1}}}`, "params.k"},
		{"bad param key", `{"id":"x","name":"install","params":{"a b":"1"}}`, "params.a b"},
		{"params not object", `{"id":"x","name":"install","params":"k=v"}`, "params"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := event.DecodeEvent([]byte(tc.body), receipt)
			var fe *event.FieldError
			require.True(t, errors.As(err, &fe), "want a FieldError, got %v", err)
			require.Equal(t, tc.field, fe.Field, fe.Error())
			require.NotEmpty(t, fe.Message)
		})
	}
}

func TestDecodeEvent_MalformedJSON(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `{"id":"x",`, `{"id":"x","name":"install"} {}`, `[1]`, `nul`} {
		_, err := event.DecodeEvent([]byte(body), receipt)
		var fe *event.FieldError
		require.True(t, errors.As(err, &fe), "%q: %v", body, err)
		require.NotEmpty(t, fe.Message, body)
	}
}

func TestEvent_Validate(t *testing.T) {
	t.Parallel()
	ev := &event.Event{ID: "x", Name: "install", Device: event.Device{IDFA: "6D92078A-8246-4BA4-AE5B-76104861E7DC", IP: "2001:db8::1"}}
	require.NoError(t, ev.Validate())
	ev.Revenue.Amount = "1.5.2"
	var fe *event.FieldError
	require.ErrorAs(t, ev.Validate(), &fe)
	require.Equal(t, "revenue.amount", fe.Field)
}

// TestEvent_ValidateLimitsSayWhatTheyMeasure: the limits count bytes of
// UTF-8, and their messages say so.
func TestEvent_ValidateLimitsSayWhatTheyMeasure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		ev             event.Event
		field, message string
	}{
		// 65 characters, 130 bytes.
		{"id", event.Event{ID: strings.Repeat("é", 65), Name: "install"}, "id", "longer than 128 bytes"},
		{"value", event.Event{ID: "x", Name: "install", AppID: strings.Repeat("é", 513)}, "app_id", "longer than 1024 bytes"},
		{"params", event.Event{ID: "x", Name: "install", Params: map[string]string{"k": strings.Repeat("v", 8192)}},
			"params", "keys and values longer than 8192 bytes in all"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var fe *event.FieldError
			require.ErrorAs(t, c.ev.Validate(), &fe)
			require.Equal(t, c.field, fe.Field)
			require.Equal(t, c.message, fe.Message)
		})
	}
	// At the limits, in bytes, all is well.
	ev := event.Event{ID: strings.Repeat("é", 64), Name: "install", AppID: strings.Repeat("é", 512),
		Params: map[string]string{"k": strings.Repeat("v", 8191)}}
	require.NoError(t, ev.Validate())
}

// TestEvent_ValidateInvalidUTF8 words invalid UTF-8 as DecodeEvent does,
// for events built in Go rather than decoded.
func TestEvent_ValidateInvalidUTF8(t *testing.T) {
	t.Parallel()
	for field, ev := range map[string]event.Event{
		"id":        {ID: "u8-\xff(", Name: "install"},
		"device.os": {ID: "x", Name: "install", Device: event.Device{OS: "i\xc3os"}},
		"params.k":  {ID: "x", Name: "install", Params: map[string]string{"k": "\xff"}},
	} {
		var fe *event.FieldError
		require.ErrorAs(t, ev.Validate(), &fe, field)
		require.Equal(t, field, fe.Field)
		require.Equal(t, "not valid UTF-8", fe.Message, field)
	}
}

// TestRawEventID names a refused event by its id only when the id is
// exactly what DecodeEvent would read: the one "id" key, valid UTF-8.
func TestRawEventID(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"id":"k-1","name":7}`:                     "k-1", // refused, but for its name
		`{"i\u0064":"k-1"}`:                         "k-1",
		`{"id":"k-1","ID":"k-2","name":"install"}`:  "k-1",
		`{"ID":"k-2"}`:                              "",
		`{"id":"k-1","id":"k-2"}`:                   "", // which one?
		"{\"id\":\"u8-\xff(\"}":                     "", // not readable as sent
		`{"id":"a\ud800"}`:                          "",
		`{"id":7}`:                                  "",
		`{"id":"` + strings.Repeat("x", 129) + `"}`: "",
		`{"id":"x",`:                                "",
		`{"id":"x"`:                                 "",
		`["x"]`:                                     "",
	} {
		require.Equal(t, want, event.RawEventID([]byte(body)), body)
	}
}
