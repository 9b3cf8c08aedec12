package event_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
)

const (
	upperIDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
	lowerIDFA = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
)

// TestEvent_Normalize puts every identifier in its form, in both modes,
// and leaves the other fields as sent.
func TestEvent_Normalize(t *testing.T) {
	t.Parallel()
	sent := event.Event{
		ID: "x", Name: "install",
		AppID: " com.example.game ", ClickID: "\tck-1\n",
		Attribution: event.Attribution{Partner: " acme_ads", CampaignID: "c1 ", Campaign: " winter ",
			AdgroupID: " g1", CreativeID: " r1 ", SiteID: " s1 ", Sub1: " free "},
		Device: event.Device{IDFA: " " + lowerIDFA + " ", IDFV: lowerIDFA, GAID: " " + upperIDFA,
			AndroidID: " 9774d56d682e549c ", IP: " 2001:db8::1 ", UserAgent: " UA ", OS: " ios ", Country: " us "},
		User:   event.User{CustomerUserID: " u1 ", Email: " A.B@Example.COM "},
		Params: map[string]string{"k": " v "},
	}
	want := event.Event{
		ID: "x", Name: "install",
		AppID: "com.example.game", ClickID: "ck-1",
		Attribution: event.Attribution{Partner: "acme_ads", CampaignID: "c1", Campaign: " winter ",
			AdgroupID: "g1", CreativeID: "r1", SiteID: "s1", Sub1: " free "},
		Device: event.Device{IDFA: upperIDFA, IDFV: upperIDFA, GAID: lowerIDFA,
			AndroidID: "9774d56d682e549c", IP: "2001:db8::1", UserAgent: " UA ", OS: " ios ", Country: "US"},
		User:   event.User{CustomerUserID: "u1", Email: "a.b@example.com"},
		Params: map[string]string{"k": " v "},
	}
	for _, strict := range []bool{false, true} {
		ev := sent
		require.NoError(t, ev.Validate())
		warnings, err := ev.Normalize(strict)
		require.NoError(t, err)
		require.Empty(t, warnings)
		require.Equal(t, want, ev)
		// Once is enough: normalising the result changes nothing.
		warnings, err = ev.Normalize(strict)
		require.NoError(t, err)
		require.Empty(t, warnings)
		require.Equal(t, want, ev)
	}
}

// TestEvent_NormalizeDrops: a field still out of its form once normalised
// is dropped with a warning that names it and not its value; with strict
// it is refused, naming it, and the event is left as it was.
func TestEvent_NormalizeDrops(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		ev      event.Event
		field   string
		warning string
		refusal string
	}{
		{"idfa", event.Event{Device: event.Device{IDFA: "not-a-uuid"}}, "device.idfa",
			"not a UUID; dropped", `"not-a-uuid" is not a UUID like 6D92078A-8246-4BA4-AE5B-76104861E7DC`},
		{"idfv", event.Event{Device: event.Device{IDFV: upperIDFA + "0"}}, "device.idfv",
			"not a UUID; dropped", `"` + upperIDFA + `0" is not a UUID like 6D92078A-8246-4BA4-AE5B-76104861E7DC`},
		{"gaid", event.Event{Device: event.Device{GAID: "38400000-8cf0-11bd-b23e-10b96e40000"}}, "device.gaid",
			"not a UUID; dropped", `"38400000-8cf0-11bd-b23e-10b96e40000" is not a UUID like 6D92078A-8246-4BA4-AE5B-76104861E7DC`},
		{"ip", event.Event{Device: event.Device{IP: "999.1.1.1"}}, "device.ip",
			"not an IPv4 or IPv6 address; dropped", `"999.1.1.1" is not an IPv4 or IPv6 address`},
		{"short ip", event.Event{Device: event.Device{IP: "203.0.113"}}, "device.ip",
			"not an IPv4 or IPv6 address; dropped", `"203.0.113" is not an IPv4 or IPv6 address`},
		{"country", event.Event{Device: event.Device{Country: "usa"}}, "device.country",
			"not an ISO 3166-1 alpha-2 code; dropped", `"usa" is not an ISO 3166-1 alpha-2 code like US`},
		{"country digits", event.Event{Device: event.Device{Country: "U1"}}, "device.country",
			"not an ISO 3166-1 alpha-2 code; dropped", `"U1" is not an ISO 3166-1 alpha-2 code like US`},
		{"email without @", event.Event{User: event.User{Email: "nobody"}}, "user.email",
			"not an email address; dropped", `"nobody" is not an email address like a@example.com`},
		{"email without domain", event.Event{User: event.User{Email: "a@"}}, "user.email",
			"not an email address; dropped", `"a@" is not an email address like a@example.com`},
		{"email with a name", event.Event{User: event.User{Email: "A <a@example.com>"}}, "user.email",
			"not an email address; dropped", `"A <a@example.com>" is not an email address like a@example.com`},
		// Ⱥ (2 bytes) lowercases to ⱥ (3 bytes): past the limit once
		// normalised, though not as sent.
		{"email too long once lowercased", event.Event{User: event.User{Email: strings.Repeat("Ⱥ", 500) + "@example.com"}}, "user.email",
			"not an email address; dropped", `"ȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺȺ" is not an email address like a@example.com`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.ev.ID, c.ev.Name, c.ev.ClickID = "x", "install", " ck "
			require.NoError(t, c.ev.Validate(), "refused in every mode: not this test's case")

			ev := c.ev
			_, err := ev.Normalize(true)
			var fe *event.FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, c.field, fe.Field)
			require.Equal(t, c.refusal, fe.Message)
			require.Equal(t, c.ev, ev, "a refused event is left as it was")

			warnings, err := ev.Normalize(false)
			require.NoError(t, err)
			require.Equal(t, []event.Warning{{Field: c.field, Message: c.warning}}, warnings)
			want := c.ev
			want.ClickID = "ck"
			want.Device, want.User = event.Device{}, event.User{}
			require.Equal(t, want, ev, "dropped, and the rest normalised")
		})
	}
}

// TestEvent_NormalizeDropsEach: every bad field of one event is dropped,
// each with its warning, in a stable order; the good ones stay.
func TestEvent_NormalizeDropsEach(t *testing.T) {
	t.Parallel()
	ev := event.Event{ID: "x", Name: "install",
		Device: event.Device{IDFA: "a", IDFV: lowerIDFA, GAID: "b", IP: "c", Country: "dd1", OS: "ios"},
		User:   event.User{Email: "e", CustomerUserID: "u1"}}
	warnings, err := ev.Normalize(false)
	require.NoError(t, err)
	var fields []string
	for _, w := range warnings {
		fields = append(fields, w.Field)
	}
	require.Equal(t, []string{"device.idfa", "device.gaid", "device.ip", "device.country", "user.email"}, fields)
	require.Equal(t, event.Device{IDFV: upperIDFA, OS: "ios"}, ev.Device)
	require.Equal(t, event.User{CustomerUserID: "u1"}, ev.User)

	// Strict names the first.
	ev = event.Event{ID: "x", Name: "install", Device: event.Device{IP: "c"}, User: event.User{Email: "e"}}
	_, err = ev.Normalize(true)
	var fe *event.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "device.ip", fe.Field)
}

// TestDecodeEvent_LeavesFormsToNormalize: the decoders take an optional
// identifier in any form; Normalize, which intake runs, drops or refuses
// it. These bodies were refused with 400 by DecodeEvent before intake
// normalised identifiers.
func TestDecodeEvent_LeavesFormsToNormalize(t *testing.T) {
	t.Parallel()
	for body, field := range map[string]string{
		`{"id":"x","name":"install","device":{"country":"USA"}}`:                              "device.country",
		`{"id":"x","name":"install","device":{"ip":"203.0.113"}}`:                             "device.ip",
		`{"id":"x","name":"install","device":{"idfa":"not-a-uuid"}}`:                          "device.idfa",
		`{"id":"x","name":"install","device":{"gaid":"38400000-8cf0-11bd-b23e-10b96e40000"}}`: "device.gaid",
		`{"id":"x","name":"install","user":{"email":"nobody"}}`:                               "user.email",
		`{"id":"x","name":"install","user":{"email":"nobody"},"app_id":"com.example\/game"}`:  "user.email", // encoding/json's path
	} {
		ev, err := event.DecodeEvent([]byte(body), receipt)
		require.NoError(t, err, body)
		strict := *ev
		_, err = strict.Normalize(true)
		var fe *event.FieldError
		require.ErrorAs(t, err, &fe, body)
		require.Equal(t, field, fe.Field, body)

		warnings, err := ev.Normalize(false)
		require.NoError(t, err, body)
		require.Len(t, warnings, 1, body)
		require.Equal(t, field, warnings[0].Field, body)
	}
}

// TestEvent_NormalizeKeepsInvalidUTF8: case mapping would turn invalid
// bytes into U+FFFD, and "A\xff@example.com" into an address; Normalize
// leaves them, so the field is not taken as repaired.
func TestEvent_NormalizeKeepsInvalidUTF8(t *testing.T) {
	t.Parallel()
	ev := event.Event{ID: "x", Name: "install", User: event.User{Email: "A\xff@example.com"}}
	require.Error(t, ev.Validate())
	_, err := ev.Normalize(true)
	require.Error(t, err)
	warnings, err := ev.Normalize(false)
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	require.Empty(t, ev.User.Email)
}

// TestEvent_Lifecycle: a status is taken in any case and stored in lower
// case; an unknown one is refused in both modes, since read as approved it
// would be paid. Click and install times are stored in UTC, or dropped
// with a warning when they are not RFC 3339 (refused under strict).
func TestEvent_Lifecycle(t *testing.T) {
	t.Parallel()
	ev, err := event.DecodeEvent([]byte(`{"id":"x","name":"purchase","transaction_id":" ord-1 ","status":" Rejected ",`+
		`"attribution":{"click_time":"2026-11-25T18:31:21.5+02:00","install_time":"yesterday"}}`), time.Now())
	require.NoError(t, err)
	warnings, err := ev.Normalize(false)
	require.NoError(t, err)
	require.Equal(t, "ord-1", ev.TransactionID)
	require.Equal(t, event.StatusRejected, ev.Status)
	require.True(t, ev.Rejected())
	require.Equal(t, "2026-11-25T16:31:21.5Z", ev.Attribution.ClickTime)
	require.Empty(t, ev.Attribution.InstallTime)
	require.Equal(t, []event.Warning{{Field: "attribution.install_time", Message: "not an RFC 3339 time; dropped"}}, warnings)

	ev, err = event.DecodeEvent([]byte(`{"id":"x","name":"purchase","attribution":{"install_time":"yesterday"}}`), time.Now())
	require.NoError(t, err)
	_, err = ev.Normalize(true)
	require.EqualError(t, err, `attribution.install_time: "yesterday" is not an RFC 3339 time like 2026-11-25T18:31:21Z`)

	// Decoding refuses it, before api.strict is looked at.
	_, err = event.DecodeEvent([]byte(`{"id":"x","name":"purchase","status":"declined"}`), time.Now())
	require.EqualError(t, err, `status: "declined": want approved, pending or rejected`)
	_, err = event.DecodeEvent([]byte(`{"id":"x","name":"purchase","transaction_id":"`+strings.Repeat("t", 129)+`"}`), time.Now())
	require.EqualError(t, err, "transaction_id: longer than 128 bytes")

	ev = &event.Event{ID: "x", Name: "install"}
	require.Equal(t, event.StatusApproved, ev.ConversionStatus())
}
