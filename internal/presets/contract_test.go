package presets_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/presets"
	"github.com/postbackhq/postback/retry"
	"github.com/postbackhq/postback/templates"
)

// contractEnv answers every ${env:NAME} with "env-NAME".
func contractEnv(name string) (string, bool) { return "env-" + name, true }

// examples are a preset's --set values for its contract: each setting's
// example, secrets left to their ${env:…} default.
func examples(p *presets.Preset) map[string]string {
	v := map[string]string{}
	for _, s := range p.Settings {
		if !s.Secret {
			v[s.Key] = s.Example
		}
	}
	return v
}

// compile builds the preset for its contract and loads it as a config
// would; the test is skipped where the build lacks a macro it needs.
func compile(t *testing.T, p *presets.Preset) *config.Partner {
	t.Helper()
	for _, m := range p.Needs {
		if _, ok := templates.FieldByName(m); !ok {
			t.Skipf("needs the %s macro", m)
		}
	}
	b, err := p.Build(p.Name, examples(p))
	require.NoError(t, err)
	data, err := presets.Append([]byte("delivery:\n  timeout: 5s\n"), b.Node)
	require.NoError(t, err)
	cfg, err := config.Parse("postback.yaml", data, contractEnv)
	require.NoError(t, err, "%s", data)
	return cfg.Partner(p.Name)
}

func TestPresets_Contract(t *testing.T) {
	t.Parallel()
	require.GreaterOrEqual(t, len(presets.All()), 9)
	for _, p := range presets.All() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			partner := compile(t, p)
			c := p.Contract

			ev, err := event.DecodeEvent([]byte(c.Event), time.Now())
			require.NoError(t, err)
			_, err = ev.Normalize(false)
			require.NoError(t, err)
			req, err := partner.Render(ev, "dlv_contract", 1)
			require.NoError(t, err)
			require.Equal(t, c.Want.Method, req.Method)
			require.Equal(t, c.Want.URL, req.URL)
			require.Equal(t, c.Want.Body, string(req.Body))
			for k, v := range c.Want.Headers {
				require.Equal(t, v, req.Header.Get(k), k)
			}
			if c.Example != "" {
				documented(t, p, c, req.URL)
			}
			for _, a := range c.Answers {
				res := retry.Result{StatusCode: a.Status, Body: []byte(a.Body), Header: http.Header{}}
				got := partner.Success.Classify(res, time.Now())
				require.Equal(t, a.Outcome, got.Outcome.String(), "answer %d %q (%s): %s", a.Status, a.Body, a.Source, got.Reason)
			}
		})
	}
}

// placeholderRE matches an example's stand-in values: TRANSACTION_ID,
// REPLACE, {click id}, …
var placeholderRE = regexp.MustCompile(`^([A-Z][A-Z_]*|\{[^}]*\}|…)$`)

// documented checks the rendered URL against the vendor's example: the
// same host and path, the example's parameters in its order (then the
// other documented ones), and its literal values.
func documented(t *testing.T, p *presets.Preset, c presets.Contract, got string) {
	t.Helper()
	ex := c.Example
	for _, s := range p.Settings {
		v := s.Example
		if s.Secret {
			v = "env-" + presets.EnvName(p.Name, s.Key)
		}
		ex = strings.ReplaceAll(ex, "<"+s.Key+">", v)
	}
	exScheme, exRest, _ := strings.Cut(ex, "://")
	gotScheme, gotRest, _ := strings.Cut(got, "://")
	if c.Scheme != "" {
		exScheme = c.Scheme
	}
	require.Equal(t, exScheme, gotScheme)
	exPath, exQuery, _ := strings.Cut(exRest, "?")
	gotPath, gotQuery, _ := strings.Cut(gotRest, "?")
	require.Equal(t, exPath, gotPath, "host and path")

	exParams, gotParams := pairs(exQuery), pairs(gotQuery)
	var names []string
	for _, kv := range exParams {
		names = append(names, kv[0])
	}
	names = append(names, c.Params...)
	var gotNames []string
	for _, kv := range gotParams {
		gotNames = append(gotNames, kv[0])
	}
	require.Equal(t, names, gotNames, "the documented parameters, in order")
	for i, kv := range exParams {
		if !placeholderRE.MatchString(kv[1]) {
			require.Equal(t, kv[1], gotParams[i][1], "documented value of %s", kv[0])
		}
	}
}

func pairs(q string) [][2]string {
	var out [][2]string
	for kv := range strings.SplitSeq(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, [2]string{k, v})
	}
	return out
}
