package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const sampleTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// A payload with a traceparent round-trips in the payloadV2 form; one
// without keeps the payloadV1 form byte for byte, so tracing off changes
// nothing stored.
func TestPayload_TraceParent(t *testing.T) {
	plain := samplePayload()
	v1, err := EncodePayload(plain)
	require.NoError(t, err)
	require.Equal(t, byte(payloadV1), v1[0])

	traced := samplePayload()
	traced.TraceParent = sampleTraceParent
	v2, err := EncodePayload(traced)
	require.NoError(t, err)
	require.Equal(t, byte(payloadV2), v2[0])
	require.Equal(t, len(v1)+2+len(sampleTraceParent), len(v2))
	require.Equal(t, v1[1:], v2[1:len(v1)], "the payloadV1 form, then the traceparent as an extension")

	got, err := DecodePayload(v2)
	require.NoError(t, err)
	require.Equal(t, sampleTraceParent, got.TraceParent)
	equalPayloads(t, traced, got)

	got, err = DecodePayload(v1)
	require.NoError(t, err)
	require.Empty(t, got.TraceParent)

	partner, enqueued, ok := PayloadHead(v2)
	require.True(t, ok)
	require.Equal(t, "acme", partner)
	require.Equal(t, traced.Enqueued, enqueued)
}

// The JSON form, as the first versions wrote it, has no "tp" and still
// reads; a JSON payload with one reads it.
func TestPayload_TraceParentJSON(t *testing.T) {
	p := samplePayload()
	old, err := json.Marshal(p)
	require.NoError(t, err)
	require.NotContains(t, string(old), `"tp"`)
	got, err := DecodePayload(old)
	require.NoError(t, err)
	require.Empty(t, got.TraceParent)

	p.TraceParent = sampleTraceParent
	withTP, err := json.Marshal(p)
	require.NoError(t, err)
	got, err = DecodePayload(withTP)
	require.NoError(t, err)
	require.Equal(t, sampleTraceParent, got.TraceParent)
}

// A worker that knows only payloadV1 reads a payloadV2 as a form a newer
// postback wrote: the version byte is all it looks at first. This decodes
// with the version switch such a worker had.
func TestPayload_TraceParentIsNewerFormatForOldWorkers(t *testing.T) {
	p := samplePayload()
	p.TraceParent = sampleTraceParent
	b, err := EncodePayload(p)
	require.NoError(t, err)
	oldDecode := func(b []byte) error {
		switch b[0] {
		case '{', payloadV1:
			return nil
		}
		return ErrNewerFormat
	}
	require.ErrorIs(t, oldDecode(b), ErrNewerFormat)
}

func TestPayload_TraceParentRefused(t *testing.T) {
	p := samplePayload()
	p.TraceParent = strings.Repeat("0", maxTraceParent+1)
	_, err := EncodePayload(p)
	require.ErrorContains(t, err, "traceparent of 257 bytes")

	// Cut inside the traceparent's extension, a payload is refused, not
	// read as from a newer postback.
	p.TraceParent = sampleTraceParent
	b, err := EncodePayload(p)
	require.NoError(t, err)
	_, err = DecodePayload(b[:len(b)-10])
	require.ErrorContains(t, err, "truncated")
	require.False(t, errors.Is(err, ErrNewerFormat))
}

// A bundle carries each delivery's traceparent.
func TestBundle_TraceParent(t *testing.T) {
	pls := bundlePayloads(2)
	pls[1].TraceParent = sampleTraceParent
	b, err := EncodeBundle(pls)
	require.NoError(t, err)
	got, err := DecodeBundle(b)
	require.NoError(t, err)
	require.Empty(t, got[0].TraceParent)
	require.Equal(t, sampleTraceParent, got[1].TraceParent)
}
