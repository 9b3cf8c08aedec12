package event_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
)

func TestSubject_MatchesAsIntakeNormalises(t *testing.T) {
	t.Parallel()
	ev := &event.Event{ID: "e", Name: "install", Params: map[string]string{"who": "A@Example.com", "level": "7"}}
	ev.User.Email, ev.User.CustomerUserID = " A@Example.com ", " u1 "
	ev.Device.IDFA, ev.Device.GAID = "6d92078a-8246-4ba4-ae5b-76104861e7dc", "AB92078A-8246-4BA4-AE5B-76104861E7DC"
	_, err := ev.Normalize(false)
	require.NoError(t, err)

	for _, c := range []struct {
		kind  event.SubjectKind
		value string
		want  bool
	}{
		{event.SubjectEmail, "  a@EXAMPLE.com", true},
		{event.SubjectEmail, "b@example.com", false},
		{event.SubjectCustomerUserID, "u1 ", true},
		{event.SubjectCustomerUserID, "U1", false}, // a customer user id keeps its case
		{event.SubjectDeviceID, "6D92078A-8246-4BA4-AE5B-76104861E7DC", true},
		{event.SubjectDeviceID, "ab92078a-8246-4ba4-ae5b-76104861e7dc", true},
		{event.SubjectDeviceID, "00000000-8246-4ba4-ae5b-76104861e7dc", false},
	} {
		sub, err := event.NewSubject(c.kind, c.value)
		require.NoError(t, err)
		require.Equal(t, c.want, sub.Matches(ev), "%s %q", c.kind, c.value)
	}
	_, err = event.NewSubject(event.SubjectEmail, "  ")
	require.Error(t, err)
	_, err = event.NewSubject("phone", "1")
	require.Error(t, err)

	ev.Device.IP, ev.Device.UserAgent, ev.Attribution.Campaign = "198.51.100.1", "UA/1", "winter"
	ev.Erase()
	require.Empty(t, ev.PersonalValues())
	require.Equal(t, "winter", ev.Attribution.Campaign)
	require.Equal(t, map[string]string{"who": "", "level": "7"}, ev.Params)
}
