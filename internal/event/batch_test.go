package event_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
)

// The batch forms the API and postback enqueue share. The batch object's
// key is read as strictly as an event's: a repeat would silently drop the
// first list, a key in another case would be taken by encoding/json.
func TestSplitJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		single     bool
		n          int
		err        string
	}{
		{"object", `{"events":[{"id":"a"},{"id":"b"}]}`, false, 2, ""},
		{"array", `[{"id":"a"}]`, false, 1, ""},
		{"single refused", `{"id":"a","name":"install"}`, false, 0, `unknown key "id"`},
		{"single taken", `{"id":"a","name":"install"}`, true, 1, ""},
		{"repeated events", `{"events":[{"id":"a"}],"events":[{"id":"b"}]}`, true, 0, "events: repeated key"},
		{"events in another case", `{"Events":[{"id":"a"}]}`, true, 0, "keys are case-sensitive"},
		{"events and more", `{"events":[],"id":"x"}`, true, 0, `unknown key "id"`},
		{"no events", `{}`, false, 0, "events: required"},
		{"events not a list", `{"events":{"id":"a"}}`, false, 0, "malformed batch"},
		{"trailing", `{"events":[]} {}`, false, 0, "trailing data"},
		{"empty", ``, false, 0, "empty body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raws, err := event.SplitJSON([]byte(tc.body), tc.single)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Len(t, raws, tc.n)
		})
	}
	require.Len(t, event.SplitNDJSON([]byte("{\"id\":\"a\"}\n\n  \n{\"id\":\"b\"}\n")), 2, "blank lines are not events")
}
