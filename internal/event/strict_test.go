package event

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var strictNow = time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)

// refusal is a body DecodeEvent must refuse with this field and message.
type refusal struct {
	name, body, field, message string
}

// requireRefused checks that DecodeEvent refuses c as it says, that the
// fast path does not take it, and that the encoding/json path alone gives
// the same answer.
func requireRefused(t *testing.T, c refusal) {
	t.Helper()
	data := []byte(c.body)
	ev, err := DecodeEvent(data, strictNow)
	var fe *FieldError
	require.ErrorAs(t, err, &fe, "accepted as %#v", ev)
	require.Equal(t, c.field, fe.Field, fe.Error())
	require.Equal(t, c.message, fe.Message, fe.Error())

	var raw eventJSON
	require.False(t, decodeFast(data, &raw), "the fast path took it")
	_, stdErr := decodeEvent(data, strictNow, false)
	require.Equal(t, err, stdErr, "the encoding/json path answers otherwise")
}

func TestDecodeEvent_invalidUTF8(t *testing.T) {
	t.Parallel()
	const ev = `"name":"install"`
	cases := []refusal{
		// Two different ids encoding/json would both read as "u8-\uFFFD(",
		// making the second a duplicate of the first.
		{"id", "{\"id\":\"u8-\xc3(\"," + ev + "}", "id", "not valid UTF-8"},
		{"another id", "{\"id\":\"u8-\xff(\"," + ev + "}", "id", "not valid UTF-8"},
		{"name", "{\"id\":\"x\",\"name\":\"inst\xffall\"}", "name", "not valid UTF-8"},
		{"timestamp", "{\"id\":\"x\"," + ev + ",\"timestamp\":\"2026-11-25T18:31:21Z\xff\"}", "timestamp", "not valid UTF-8"},
		{"app_id", "{\"id\":\"x\"," + ev + ",\"app_id\":\"com.\xfe\"}", "app_id", "not valid UTF-8"},
		{"device", "{\"id\":\"x\"," + ev + ",\"device\":{\"os\":\"i\xc3os\"}}", "device.os", "not valid UTF-8"},
		{"attribution", "{\"id\":\"x\"," + ev + ",\"attribution\":{\"sub5\":\"\x80\"}}", "attribution.sub5", "not valid UTF-8"},
		{"user", "{\"id\":\"x\"," + ev + ",\"user\":{\"customer_user_id\":\"\xf0\x9f\x98\"}}", "user.customer_user_id", "not valid UTF-8"},
		{"amount", "{\"id\":\"x\"," + ev + ",\"revenue\":{\"amount\":\"1\xff\"}}", "revenue.amount", "not valid UTF-8"},
		{"param value", "{\"id\":\"x\"," + ev + ",\"params\":{\"k\":\"v\xff\"}}", "params.k", "not valid UTF-8"},
		{"param key", "{\"id\":\"x\"," + ev + ",\"params\":{\"k\xff\":\"v\"}}", "params.k\uFFFD", "key not valid UTF-8"},
		{"top-level key", "{\"id\":\"x\"," + ev + ",\"\xffid\":\"y\"}", "\uFFFDid", "key not valid UTF-8"},
		{"long key", "{\"id\":\"x\"," + ev + ",\"params\":{\"a" + strings.Repeat("é", 40) + "\xff\":1}}", "params.a" + strings.Repeat("é", 31), "key not valid UTF-8"},
		{"nested key", "{\"id\":\"x\"," + ev + ",\"device\":{\"o\xffs\":\"y\"}}", "device.o\uFFFDs", "key not valid UTF-8"},
		{"surrogate as bytes", "{\"id\":\"\xed\xa0\x80\"," + ev + "}", "id", "not valid UTF-8"},
		{"overlong", "{\"id\":\"\xc0\xaf\"," + ev + "}", "id", "not valid UTF-8"},
		// A lone surrogate escape is half a UTF-16 pair: no character, so
		// encoding/json reads it as U+FFFD, like invalid UTF-8.
		{"lone high surrogate", `{"id":"a\ud800",` + ev + `}`, "id", `lone surrogate escape \ud800 (not a character)`},
		{"lone low surrogate", `{"id":"a\uDC00b",` + ev + `}`, "id", `lone surrogate escape \uDC00 (not a character)`},
		{"high then no low", `{"id":"a\ud800\u0041",` + ev + `}`, "id", `lone surrogate escape \ud800 (not a character)`},
		{"high then high", `{"id":"a\ud800\ud800\udc00",` + ev + `}`, "id", `lone surrogate escape \ud800 (not a character)`},
		{"high at the end", `{"id":"a",` + ev + `,"device":{"os":"\ud83d"}}`, "device.os", `lone surrogate escape \ud83d (not a character)`},
		{"surrogate in a param key", `{"id":"a",` + ev + `,"params":{"k\udfff":1}}`, `params.k\udfff`, `key has a lone surrogate escape \udfff (not a character)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			requireRefused(t, c)
		})
	}
}

// TestDecodeEvent_validUnicode: what is valid stays valid, U+FFFD included
// when it is sent.
func TestDecodeEvent_validUnicode(t *testing.T) {
	t.Parallel()
	for body, id := range map[string]string{
		`{"id":"a\ud83d\ude00","name":"install"}`:     "a\U0001F600",
		`{"id":"a😀","name":"install"}`:                "a\U0001F600",
		`{"id":"a\ufffd","name":"install"}`:           "a\uFFFD",
		`{"id":"a` + "\uFFFD" + `","name":"install"}`: "a\uFFFD",
		`{"id":"caf\u00e9","name":"install"}`:         "café",
	} {
		ev, err := DecodeEvent([]byte(body), strictNow)
		require.NoError(t, err, body)
		require.Equal(t, id, ev.ID, body)
	}
}

func TestDecodeEvent_keysExactAndOnce(t *testing.T) {
	t.Parallel()
	const caseMsg, repeatMsg = "unknown field (keys are case-sensitive)", "repeated key"
	const ev = `"id":"x","name":"install"`
	cases := []refusal{
		// encoding/json would take "ID" for "id", so this would be k-2.
		{"id in another case", `{"id":"k-1","ID":"k-2","name":"install"}`, "ID", caseMsg},
		{"only in another case", `{"ID":"k-2","name":"install"}`, "ID", caseMsg},
		{"name", `{"id":"x","Name":"install"}`, "Name", caseMsg},
		{"object", `{` + ev + `,"Device":{"os":"ios"}}`, "Device", caseMsg},
		{"attribution", `{` + ev + `,"attribution":{"Partner":"p"}}`, "attribution.Partner", caseMsg},
		{"device", `{` + ev + `,"device":{"IDFA":"6D92078A-8246-4BA4-AE5B-76104861E7DC"}}`, "device.IDFA", caseMsg},
		{"user", `{` + ev + `,"user":{"Email":"a@example.com"}}`, "user.Email", caseMsg},
		{"revenue", `{` + ev + `,"revenue":{"amount":"1","CURRENCY":"USD"}}`, "revenue.CURRENCY", caseMsg},
		{"consent", `{` + ev + `,"consent":{"Granted":true}}`, "consent.Granted", caseMsg},
		// encoding/json folds case as Unicode does: "ſ" is an "s", "K"
		// (the Kelvin sign) a "k".
		{"long s", `{` + ev + `,"attribution":{"ſub1":"x"}}`, "attribution.ſub1", caseMsg},
		{"Kelvin sign", `{` + ev + `,"clic` + "\u212a" + `_id":"c"}`, "clic\u212a_id", caseMsg},
		{"escaped", `{` + ev + `,"\u0049D":"k-2"}`, "ID", caseMsg},

		// encoding/json would keep the last of each.
		{"repeated id", `{"id":"k-1","id":"k-2","name":"install"}`, "id", repeatMsg},
		{"repeated through an escape", `{"id":"k-1","i\u0064":"k-2","name":"install"}`, "id", repeatMsg},
		{"repeated name", `{` + ev + `,"name":"purchase"}`, "name", repeatMsg},
		{"repeated object", `{` + ev + `,"device":{"ip":"::1"},"device":{"os":"ios"}}`, "device", repeatMsg},
		{"in attribution", `{` + ev + `,"attribution":{"partner":"a","partner":"b"}}`, "attribution.partner", repeatMsg},
		{"in device", `{` + ev + `,"device":{"os":"ios","os":"android"}}`, "device.os", repeatMsg},
		{"in user", `{` + ev + `,"user":{"customer_user_id":"a","customer_user_id":"b"}}`, "user.customer_user_id", repeatMsg},
		{"in revenue", `{` + ev + `,"revenue":{"amount":"1","amount":"100"}}`, "revenue.amount", repeatMsg},
		{"in consent", `{` + ev + `,"consent":{"granted":false,"granted":true}}`, "consent.granted", repeatMsg},
		{"in params", `{` + ev + `,"params":{"k":"1","k":"2"}}`, "params.k", repeatMsg},
		{"in params after null", `{` + ev + `,"params":{"k":null,"k":"2"}}`, "params.k", repeatMsg},

		// Keys that are not the event's at all, named by their path.
		{"unknown", `{` + ev + `,"clickid":"c"}`, "clickid", "unknown field (check its spelling; free keys go in params)"},
		{"unknown nested", `{` + ev + `,"device":{"idfaa":"y"}}`, "device.idfaa", "unknown field (check its spelling; free keys go in params)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			requireRefused(t, c)
		})
	}
}

// TestDecodeEvent_paramsKeysAreCaseSensitive: params keys are the
// sender's own, so "a" and "A" are two of them.
func TestDecodeEvent_paramsKeysAreCaseSensitive(t *testing.T) {
	t.Parallel()
	ev, err := DecodeEvent([]byte(`{"id":"x","name":"install","params":{"a":"1","A":"2"}}`), strictNow)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "1", "A": "2"}, ev.Params)
}
