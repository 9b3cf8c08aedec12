package intake_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
)

// mustConfig parses a postback.yaml for a test.
func mustConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

// strictYAML is yaml, a config whose api section comes first, with
// api.strict set.
func strictYAML(yaml string) string {
	return strings.Replace(yaml, "api:\n", "api:\n  strict: true\n", 1)
}
