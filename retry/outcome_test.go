package retry_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/retry"
)

func TestOutcome_String(t *testing.T) {
	t.Parallel()

	// These strings are DLQ reasons and metric labels: changing one breaks users.
	want := map[retry.Outcome]string{
		retry.Delivered:    "delivered",
		retry.Retry:        "retry",
		retry.Rejected:     "rejected",
		retry.Blocked:      "blocked",
		retry.RenderFailed: "render",
		retry.Exhausted:    "exhausted",
		retry.Deferred:     "deferred",
		retry.Skipped:      "skipped",
		retry.Duplicate:    "duplicate",
	}
	for o, s := range want {
		require.Equal(t, s, o.String())
		got, err := retry.ParseOutcome(s)
		require.NoError(t, err)
		require.Equal(t, o, got)
	}
	require.Equal(t, "Outcome(0)", retry.Outcome(0).String())
	require.Equal(t, "Outcome(10)", retry.Outcome(10).String())
}

func TestParseOutcome(t *testing.T) {
	t.Parallel()

	_, err := retry.ParseOutcome("Delivered")
	require.ErrorContains(t, err, `unknown outcome "Delivered"`)
	_, err = retry.ParseOutcome("")
	require.Error(t, err)
}

func TestOutcome_DeadLetter(t *testing.T) {
	t.Parallel()

	for o := retry.Delivered; o <= retry.Duplicate; o++ {
		want := o == retry.Rejected || o == retry.Blocked || o == retry.RenderFailed || o == retry.Exhausted
		require.Equal(t, want, o.DeadLetter(), o.String())
	}
}

func TestOutcome_MarshalText(t *testing.T) {
	t.Parallel()

	b, err := json.Marshal(map[string]retry.Outcome{"reason": retry.RenderFailed})
	require.NoError(t, err)
	require.JSONEq(t, `{"reason":"render"}`, string(b))

	var got struct{ Reason retry.Outcome }
	require.NoError(t, json.Unmarshal([]byte(`{"Reason":"exhausted"}`), &got))
	require.Equal(t, retry.Exhausted, got.Reason)

	require.Error(t, json.Unmarshal([]byte(`{"Reason":"nope"}`), &got))
	_, err = json.Marshal(retry.Outcome(0))
	require.Error(t, err)
}
