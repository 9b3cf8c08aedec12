package delivery_test

import (
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

// clientYAML has partners an event routes to in different ways.
const clientYAML = `
api:
  keys: ["k-0123456789abcdef"]
partners:
  - id: acme_ads
    events: [install, purchase]
    url: "https://acme.example/c?c={click_id}"
  - id: everyone
    match: all
    url: "https://all.example/c?e={event}"
  - id: big_spenders
    match: all
    when: 'revenue >= 100'
    url: "https://big.example/c?r={revenue}"
`
