package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
)

func TestParse_OpsAndAutoPause(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("postback.yaml", []byte(`
ops:
  webhooks:
    - url: "https://ops.example/hooks"
      secrets: ["${env:ACME_SECRET}"]
partners:
  - id: acme
    url: "https://pb.example/c"
    auto_pause: {consecutive_failures: 50}
  - id: beta
    url: "https://pb.example/b"
`), env)
	require.NoError(t, err)
	require.Len(t, cfg.Ops.Webhooks, 1)
	require.Equal(t, "https://ops.example/hooks", cfg.Ops.Webhooks[0].URL)
	require.NotNil(t, cfg.Ops.Webhooks[0].Signer)
	require.Equal(t, 50, cfg.Partner("acme").AutoPause.ConsecutiveFailures)
	require.Zero(t, cfg.Partner("beta").AutoPause.ConsecutiveFailures, "off by default")

	// A producer needs none of ops' secrets.
	intake, err := config.ParseIntake("postback.yaml", []byte(`
ops:
  webhooks: [{url: "https://ops.example/hooks", secrets: ["${env:UNSET_SECRET}"]}]
partners:
  - id: acme
`), env)
	require.NoError(t, err)
	require.Empty(t, intake.Ops.Webhooks)
}

func TestParse_OpsProblems(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{
		`postback.yaml:3:13: ops.webhooks[0].url: "ftp://ops.example": want an absolute http:// or https:// URL`,
		`postback.yaml:4:7: ops.webhooks[1].secrets: required: at least one secret (events are signed like partner postbacks)`,
		`postback.yaml:5:7: ops.webhooks[2].url: required`,
		`postback.yaml:5:18: ops.webhooks[2].secrets[0]: environment variable NOPE is not set`,
		`postback.yaml:6:3: ops.retries: unknown key (want webhooks)`,
		`postback.yaml:10:40: partner "acme": auto_pause.consecutive_failures: "0" is not a whole number >= 1`,
		`postback.yaml:13:18: partner "beta": auto_pause.after: unknown key (want consecutive_failures)`,
	}, problems(t, `ops:
  webhooks:
    - {url: "ftp://ops.example", secrets: ["${env:ACME_SECRET}"]}
    - {url: "https://ops.example"}
    - {secrets: ["${env:NOPE}"]}
  retries: 3
partners:
  - id: acme
    url: "https://pb.example/c"
    auto_pause: {consecutive_failures: 0}
  - id: beta
    url: "https://pb.example/b"
    auto_pause: {after: 3}
`))
}
