package presets_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/presets"
)

// commented is a config as people write them: comments everywhere, odd
// spacing, a four-space list, a section after partners.
const commented = `# postback config — hand-written
api:
  keys: ["0123456789abcdef0123"]   # rotate monthly

partners:
    # the first partner
    -   id: acme     # our oldest
        url: "https://pb.acme.example/c?click_id={click_id}"

        # retries kept short
        retry: {max_attempts: 3}

    -   id: beta
        url: 'https://beta.example/p?c={click_id}'
        #   commented-out: rate_limit: 10/s


# delivery settings below belong to the next section
delivery:
  timeout:    5s   # odd spacing kept
# trailing comment
`

func build(t *testing.T, name, id string, set map[string]string) *presets.Block {
	t.Helper()
	b, err := presets.ByName(name).Build(id, set)
	require.NoError(t, err)
	return b
}

func TestAppend_KeepsTheFile(t *testing.T) {
	t.Parallel()
	b := build(t, "tune", "tune_net", map[string]string{"network": "demo", "offer_id": "26"})
	out, err := presets.Append([]byte(commented), b.Node)
	require.NoError(t, err)

	// The new entry goes after beta's commented-out line, before the
	// blank lines and the next section's comment; nothing else moves.
	cut := strings.Index(commented, "\n\n\n# delivery") + 1
	before, after := commented[:cut], commented[cut:]
	require.True(t, strings.HasPrefix(string(out), before), "%s", out)
	require.True(t, strings.HasSuffix(string(out), after), "%s", out)
	added := string(out)[len(before) : len(out)-len(after)]
	require.Equal(t, `
    - id: tune_net
      # transaction_id is the network's id of the click.
      require: [click_id]
      url: "https://demo.go2cloud.org/aff_lsr?offer_id=26&transaction_id={click_id}"
      # The network answers HTTP 200 either way: the verdict is in the body.
      responses:
        - {status: ["200"], body_match: '^\s*success=true', outcome: delivered}
        - {status: ["200"], body_match: '^\s*success=false', outcome: rejected}
`, added)

	cfg, err := config.Parse("postback.yaml", out, contractEnv)
	require.NoError(t, err)
	require.Len(t, cfg.Partners, 3)
	require.Len(t, cfg.Partner("tune_net").Responses, 2)
}

func TestAppend_Layouts(t *testing.T) {
	t.Parallel()
	b := build(t, "voluum", "vol", map[string]string{"tracker": "t.example.com"})
	entry := "  - id: vol\n    require: [click_id]\n    url: \"https://t.example.com/postback?cid={click_id}&payout={revenue|default:0}&txid={event_id}\"\n"
	tests := map[string]struct{ in, want string }{
		"no partners section":   {"api:\n  keys: [k]", "api:\n  keys: [k]\npartners:\n" + entry},
		"empty partners":        {"partners:\n# none yet\ndelivery: {timeout: 5s}\n", "partners:\n" + entry + "# none yet\ndelivery: {timeout: 5s}\n"},
		"partners last, no EOL": {"partners:\n  - id: a\n    url: \"https://a.example/\"", "partners:\n  - id: a\n    url: \"https://a.example/\"\n" + entry},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := presets.Append([]byte(tt.in), b.Node)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(out))
		})
	}
}

func TestAppend_Refuses(t *testing.T) {
	t.Parallel()
	b := build(t, "voluum", "acme", map[string]string{"tracker": "t.example.com"})
	_, err := presets.Append([]byte(commented), b.Node)
	require.ErrorIs(t, err, presets.ErrPartnerExists)
	require.EqualError(t, err, `partner "acme": a partner with this id is already in the config (line 7)`)

	_, err = presets.Append([]byte("partners: [{id: a, url: 'https://a.example/'}]\n"), b.Node)
	require.ErrorContains(t, err, "flow style")
}

func TestPreset_Build(t *testing.T) {
	t.Parallel()
	p := presets.ByName("affise")

	_, err := p.Build("aff", map[string]string{"tenant": "demo"})
	require.EqualError(t, err, "preset affise needs --set goals=… (each event's goal value in the offer, as map pairs, e.g. install=1,purchase=2, e.g. install=1,purchase=2)")

	_, err = p.Build("aff", map[string]string{"tenant": "demo", "goals": "install=1", "secure": "plain-secret"})
	require.EqualError(t, err, "--set secure: a secret is not written in the config file: give ${env:NAME}, or leave it out for ${env:AFF_SECURE}")

	_, err = p.Build("aff", map[string]string{"tenant": "demo.evil.com/x?", "goals": "install=1"})
	require.ErrorContains(t, err, `--set tenant="demo.evil.com/x?": want`)

	_, err = p.Build("aff", map[string]string{"tenant": "demo", "goals": "install=1", "colour": "red"})
	require.EqualError(t, err, "preset affise has no setting colour (settings: tenant, goals, default_status, secure)")

	b, err := p.Build("aff-2", map[string]string{"tenant": "demo", "goals": "install=1"})
	require.NoError(t, err)
	require.Equal(t, []string{"AFF_2_SECURE"}, b.Env)

	b, err = p.Build("aff", map[string]string{"tenant": "demo", "goals": "install=1", "secure": "${env:AFFISE_HASH}"})
	require.NoError(t, err)
	require.Equal(t, []string{"AFFISE_HASH"}, b.Env)
}

func TestPresets_Definitions(t *testing.T) {
	t.Parallel()
	want := []string{"adjust-callback", "affise", "appsflyer-push", "binom", "everflow", "keitaro", "s2s-get", "tune", "voluum"}
	require.Equal(t, want, presets.Names())
	for _, p := range presets.All() {
		require.NotEmpty(t, p.Contract.Source, p.Name)
		require.NotEmpty(t, p.Contract.Want.URL, p.Name)
		for _, s := range p.Settings {
			require.NotEmpty(t, s.Example, "%s: %s", p.Name, s.Key)
		}
	}
}
