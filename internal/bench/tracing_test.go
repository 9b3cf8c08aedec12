package bench

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// With Tracing, the end-to-end run makes its spans (an intake span per
// event and an attempt span per delivery, at least) and says so.
func TestRun_tracing(t *testing.T) {
	cfg := setup(t)
	cfg.Phases, cfg.Tracing = []string{"e2e"}, true
	res, err := Run(context.Background(), cfg)
	require.NoError(t, err)
	require.True(t, res.Tracing)
	require.Equal(t, res.Accepted, res.Delivered)
	require.GreaterOrEqual(t, res.Spans, 2*res.Delivered, "an intake and an attempt span per delivery")
	var table bytes.Buffer
	require.NoError(t, res.WriteTable(&table))
	require.Contains(t, table.String(), "Tracing on:")
}
