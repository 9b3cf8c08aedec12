package presets_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/presets"
)

// docs/partners.md is generated from the definitions: it must not drift.
func TestCatalogue_IsCurrent(t *testing.T) {
	t.Parallel()
	got, err := os.ReadFile("../../docs/partners.md")
	require.NoError(t, err)
	want := presets.Catalogue()
	require.True(t, string(want) == string(got), "docs/partners.md differs from the preset definitions: run make docs")
	for _, p := range presets.All() {
		require.Contains(t, string(want), "\n### "+p.Name+"\n")
	}
	catalogue := string(want)[strings.Index(string(want), "## The presets"):strings.Index(string(want), "## Writing a new preset")]
	require.NotContains(t, catalogue, "${set:", "settings are shown as <key>")
	require.NotContains(t, string(want), "{{catalogue}}")
}
