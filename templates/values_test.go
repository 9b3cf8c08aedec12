package templates_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/templates"
)

func TestValues_ZeroIDFA(t *testing.T) {
	t.Parallel()
	const zero = "00000000-0000-0000-0000-000000000000"
	var v templates.Values
	v.Set(templates.FieldIDFA, zero)
	v.Set(templates.FieldGAID, zero)
	v.Set(templates.FieldIDFV, zero) // not an advertising id: kept
	require.Empty(t, v.Get(templates.FieldIDFA))
	require.Empty(t, v.Get(templates.FieldGAID))
	require.Equal(t, zero, v.Get(templates.FieldIDFV))

	v.Set(templates.FieldIDFA, "00000000000000000000000000000000")
	require.Empty(t, v.Get(templates.FieldIDFA))
	v.Set(templates.FieldGAID, "38400000-8cf0-11bd-b23e-10b96e40000d")
	require.Equal(t, "38400000-8cf0-11bd-b23e-10b96e40000d", v.Get(templates.FieldGAID))

	tmpl := templates.MustParse("https://h/?idfa={idfa|default:none}", templates.ContextURL)
	got, err := tmpl.Render(&v)
	require.NoError(t, err)
	require.Equal(t, "https://h/?idfa=none", got)
}

func TestValues_Time(t *testing.T) {
	t.Parallel()
	var v templates.Values
	at := time.Date(2026, 11, 25, 18, 31, 21, 999e6, time.FixedZone("X", -5*3600))
	v.SetTime(at)
	require.Equal(t, "2026-11-25T23:31:21Z", v.Get(templates.FieldTimestamp))
	require.True(t, at.Equal(v.Time()))

	v.Set(templates.FieldTimestamp, "2026-01-02T03:04:05Z")
	require.Equal(t, "2026-01-02T03:04:05Z", v.Get(templates.FieldTimestamp))
	require.True(t, v.Time().Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))

	v.Set(templates.FieldTimestamp, "not a time")
	require.True(t, v.Time().IsZero())

	v.SetTime(time.Time{})
	require.Empty(t, v.Get(templates.FieldTimestamp))
}

func TestValues_Params(t *testing.T) {
	t.Parallel()
	var v templates.Values
	_, ok := v.Param("level")
	require.False(t, ok)
	v.SetParam("level", "7")
	got, ok := v.Param("level")
	require.True(t, ok)
	require.Equal(t, "7", got)

	// Params may also be handed over whole.
	w := templates.Values{Params: map[string]string{"a": "1"}}
	got, ok = w.Param("a")
	require.True(t, ok)
	require.Equal(t, "1", got)
}

func TestValues_Reset(t *testing.T) {
	t.Parallel()
	var v templates.Values
	v.Set(templates.FieldClickID, "c")
	v.SetParam("k", "v")
	v.SetTime(time.Now())
	v.Reset()
	require.Empty(t, v.Get(templates.FieldClickID))
	require.Empty(t, v.Get(templates.FieldTimestamp))
	require.True(t, v.Time().IsZero())
	_, ok := v.Param("k")
	require.False(t, ok)
}

func TestValues_InvalidField(t *testing.T) {
	t.Parallel()
	var v templates.Values
	require.Empty(t, v.Get(templates.Field(0)))
	require.Empty(t, v.Get(templates.Field(200)))
	require.Panics(t, func() { v.Set(templates.Field(200), "x") })
}
