package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
)

func TestParse_PropagateTrace(t *testing.T) {
	t.Parallel()
	src := `partners:
  - id: traced
    url: "https://t.example/{click_id}"
    propagate_trace: true
  - id: quiet
    url: "https://q.example/{click_id}"
`
	cfg, err := config.Parse("postback.yaml", []byte(src), env)
	require.NoError(t, err)
	require.True(t, cfg.Partner("traced").PropagateTrace)
	require.False(t, cfg.Partner("quiet").PropagateTrace, "off by default")

	require.Equal(t, []string{`postback.yaml:4:22: partner "traced": propagate_trace: "sometimes" is not true or false`},
		problems(t, `partners:
  - id: traced
    url: "https://t.example/{click_id}"
    propagate_trace: sometimes
`))
}
