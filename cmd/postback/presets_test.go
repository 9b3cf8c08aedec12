package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/templates"
)

func TestPartnersPresets_JSON(t *testing.T) {
	r := partnersRun(t, "partners", "presets", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var rows []struct {
		Name     string `json:"name"`
		Vendor   string `json:"vendor"`
		Sends    struct{ Method, URL string }
		Settings []struct {
			Key         string `json:"key"`
			Description string `json:"description"`
			Required    bool   `json:"required"`
			Default     string `json:"default"`
			Secret      bool   `json:"secret"`
		} `json:"settings"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows), r.stdout)
	byName := map[string]int{}
	for i, row := range rows {
		byName[row.Name] = i
		require.NotEmpty(t, row.Vendor)
		for _, s := range row.Settings {
			require.NotEmpty(t, s.Description, "%s.%s", row.Name, s.Key)
			require.NotContains(t, s.Description, "\n")
		}
	}
	for _, want := range []string{"tune", "everflow", "keitaro", "voluum", "binom", "affise", "adjust-callback", "appsflyer-push", "s2s-get"} {
		require.Contains(t, byName, want)
	}
	tune := rows[byName["tune"]]
	require.Equal(t, "TUNE / HasOffers", tune.Vendor)
	require.Equal(t, "GET", tune.Sends.Method)
	require.Equal(t, "https://<network>.go2cloud.org/aff_lsr?offer_id=<offer_id>&transaction_id={click_id}", tune.Sends.URL)
	require.Equal(t, "network", tune.Settings[0].Key)
	require.True(t, tune.Settings[0].Required)
	aff := rows[byName["affise"]]
	secure := aff.Settings[len(aff.Settings)-1]
	require.Equal(t, "secure", secure.Key)
	require.True(t, secure.Secret)
	require.False(t, secure.Required)
	require.Equal(t, "${env:ID_SECURE}", secure.Default)
}

// commentedConfig is a hand-written config: comments, odd spacing, a
// section after partners.
const commentedConfig = `# our postbacks
api:
  keys: ["0123456789abcdef0123"]    # rotated monthly

partners:
  # oldest partner first
  - id: acme
    url: "https://pb.acme.example/c?click_id={click_id}"   # GET

  - id: beta
    url:   'https://beta.example/p?c={click_id}'
    # rate_limit: 10/s  (off while they migrate)

# delivery last
delivery:
  timeout: 5s
`

func TestPartnersAdd_RoundTrip(t *testing.T) {
	path := partnersFile(t, "postback.yaml", commentedConfig)
	r := partnersRun(t, "-c", path, "partners", "add", "--preset", "everflow", "--id", "ef",
		"--set", "host=www.example-tracking.com", "--set", "path=/", "--set", "nid=123")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, path+`: added partner "ef" (Everflow, preset everflow); the config loads
still to do:
  - transaction_id is the id Everflow gave the click: send it to your backend as the event's click_id
  - adv1…adv5 are accepted too: add them to the url with the macros you want
  - Everflow disables a postback after 10 consecutive failures in 72 hours
  - events: the partner hears every event attributed to "ef"; list the ones it wants under events:
  - check the request: postback partners render --partner ef --event FILE
`, r.stdout)

	got, err := os.ReadFile(path)
	require.NoError(t, err)
	cut := strings.Index(commentedConfig, "\n\n# delivery last") + 1
	require.Equal(t, commentedConfig[:cut]+`
  - id: ef
    require: [click_id]
    # amount: a decimal; Everflow reads 12,34 as 12.34 too.
    url: "https://www.example-tracking.com/?nid=123&transaction_id={click_id}&amount={revenue|default:0}"
`+commentedConfig[cut:], string(got), "byte for byte outside the new entry")

	r = partnersRun(t, "-c", path, "partners", "validate")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "3 partners OK")

	// The same id again is refused, and the file stays as it is.
	r = partnersRun(t, "-c", path, "partners", "add", "--preset", "voluum", "--id", "ef", "--set", "tracker=t.example.com")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `partner "ef": a partner with this id is already in the config (line 14)`)
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, got, again)
}

func TestPartnersAdd_SecretsStayInTheEnvironment(t *testing.T) {
	path := partnersFile(t, "postback.yaml", commentedConfig)
	r := partnersRun(t, "-c", path, "partners", "add", "--preset", "affise", "--id", "aff",
		"--set", "tenant=demo", "--set", "secure=hunter2", "--set", "goals=install=1,purchase=2")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "--set secure: a secret is not written in the config file")
	unchanged, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, commentedConfig, string(unchanged))

	path = partnersFile(t, "postback.yaml", commentedConfig)
	r = partnersRun(t, "-c", path, "partners", "add", "--preset", "voluum", "--id", "vol")
	require.Equal(t, 1, r.code)
	require.Equal(t, "postback: preset voluum needs --set tracker=… (your Voluum tracking domain, e.g. tracker.example.com)\n", r.stderr)
}

func TestPartnersAdd_RefusesAConfigThatWouldNotLoad(t *testing.T) {
	broken := strings.Replace(commentedConfig, "timeout: 5s", "timeout: soon", 1)
	path := partnersFile(t, "postback.yaml", broken)
	r := partnersRun(t, "-c", path, "partners", "add", "--preset", "binom", "--id", "bn", "--set", "tracker=t.example.com")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, `postback.yaml:16:12: delivery.timeout:`)
	require.Contains(t, r.stderr, `not changed: the config does not load as it is (1 problem); fix it first`)
	unchanged, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, broken, string(unchanged))
}

func TestPartnersAdd_NeedsMacrosTheBuildKnows(t *testing.T) {
	path := partnersFile(t, "postback.yaml", commentedConfig)
	r := partnersRun(t, "-c", path, "partners", "add", "--preset", "keitaro", "--id", "kt", "--set", "tracker=t.example.com")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	if _, known := templates.FieldByName("status"); known {
		require.Equal(t, 0, r.code, r.stdout+r.stderr)
		require.Contains(t, r.stdout, "set the environment variable KT_KEY before the workers start")
		return
	}
	// Without the macro the new partner does not load: refused, and the
	// file is left as it was.
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, `partner "kt": url: unknown macro {status}`)
	require.Contains(t, r.stderr, `not changed: with partner "kt" from preset keitaro the config would not load`)
	require.Equal(t, commentedConfig, string(after))
}

func TestPartnersAdd_Usage(t *testing.T) {
	r := partnersRun(t, "partners", "add", "--preset", "tune")
	require.Equal(t, 2, r.code)
	r = partnersRun(t, "partners", "add", "--preset", "nope", "--id", "x")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, `unknown preset "nope" (presets: adjust-callback, affise, appsflyer-push, binom, everflow, keitaro, s2s-get, tune, voluum)`)
}

// partners test says which responses rule decided.
func TestPartnersTest_PrintsTheRule(t *testing.T) {
	b := setupPartners(t)
	cfg := strings.Replace(strings.ReplaceAll(partnersYAML, "PARTNER", b.partner.URL),
		"    rate_limit: 100/s\n",
		"    rate_limit: 100/s\n    responses:\n      - {status: [\"200\"], body_match: '^success=true', outcome: delivered}\n      - {status: [\"200\"], body_match: '^success=false', outcome: rejected}\n", 1)
	b.config = partnersFile(t, "responses.yaml", cfg)
	b.partner.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("success=false; err_msg=Invalid Trans. ID #7;"))
	}
	r := partnersRun(t, "-c", b.config, "partners", "test", "-p", "acme", "-e", b.event, "-o", "table")
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stdout, "\noutcome:  rejected (HTTP 200, responses[1] (status 200, body_match \"^success=false\") matched)\n")
	require.Contains(t, r.stdout, "\nrule:     responses[1] (status 200, body_match \"^success=false\")\n")

	b.partner.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("success=true;")) }
	r = partnersRun(t, "-c", b.config, "partners", "test", "-p", "acme", "-e", b.event, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, "delivered", got["outcome"])
	require.Equal(t, `responses[0] (status 200, body_match "^success=true")`, got["rule"])
}
