package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/templates"
)

// env is the environment every test config sees.
func env(name string) (string, bool) {
	v, ok := map[string]string{
		"ACME_TOKEN":  "tok-123",
		"ACME_SECRET": "whsec_c2VjcmV0LWJ5dGVz",
		"API_KEY":     "0123456789abcdef0123",
	}[name]
	return v, ok
}

// problems parses src and returns its problems as the CLI prints them.
func problems(t *testing.T, src string) []string {
	t.Helper()
	_, err := config.Parse("postback.yaml", []byte(src), env)
	require.Error(t, err)
	var cerr *config.Error
	require.True(t, errors.As(err, &cerr), "want *config.Error, got %T: %v", err, err)
	out := make([]string, len(cerr.Problems))
	for i, p := range cerr.Problems {
		out[i] = p.String()
	}
	require.Equal(t, strings.Join(out, "\n"), err.Error())
	return out
}

func TestParse_Problems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown macro with suggestion",
			src: `partners:
  - id: acme
    url: "https://pb.acme.example/c?click_id={clik_id}"
`,
			want: []string{`postback.yaml:3:46: partner "acme": url: unknown macro {clik_id} (did you mean {click_id}?)`},
		},
		{
			name: "wait settings",
			src: `api:
  wait_replicas: -1
  wait_timeout: 5s
`,
			want: []string{
				`postback.yaml:2:18: api.wait_replicas: "-1" is not a whole number >= 0`,
				`postback.yaml:3:17: api.wait_timeout: 5s is longer than 1s: the API answers within 3s`,
			},
		},
		{
			name: "unknown filter",
			src: `partners:
  - id: acme
    url: "https://x.example/?a={click_id|nope}"
`,
			want: []string{`postback.yaml:3:42: partner "acme": url: unknown filter "nope" in {click_id|nope}`},
		},
		{
			name: "filter argument missing",
			src: `partners:
  - id: acme
    url: "https://x.example/?a={revenue|default}"
`,
			want: []string{`postback.yaml:3:41: partner "acme": url: filter "default" needs an argument like default:0`},
		},
		{
			name: "filter argument where none is taken",
			src: `partners:
  - id: acme
    url: https://x.example/?a={click_id|sha256:x}
`,
			want: []string{`postback.yaml:3:41: partner "acme": url: filter "sha256" takes no argument, in {click_id|sha256:x}`},
		},
		{
			name: "unbalanced brace",
			src: `partners:
  - id: acme
    url: "https://x.example/?a={click_id&b=1"
`,
			want: []string{`postback.yaml:3:32: partner "acme": url: unclosed macro {click_id ("&" where "|" or "}" should be)`},
		},
		{
			name: "macro in the host",
			src: `partners:
  - id: acme
    url: "http://{click_id}.example/"
`,
			want: []string{`postback.yaml:3:18: partner "acme": url: macro {click_id} not allowed in the URL host`},
		},
		{
			name: "position counts escapes in double quotes",
			src: `partners:
  - id: acme
    url: "https://x.example/\u00e9\t{clik_id}"
`,
			// {clik_id} is the 37th character of the line: the escapes are
			// longer in the file than in the value.
			want: []string{`postback.yaml:3:37: partner "acme": url: unknown macro {clik_id} (did you mean {click_id}?)`},
		},
		{
			name: "position counts doubled quotes in single quotes",
			src: `partners:
  - id: acme
    method: POST
    url: "https://x.example/"
    body: '{"it''s": "{revenu}"}'
`,
			want: []string{`postback.yaml:5:23: partner "acme": body: unknown macro {revenu} (did you mean {revenue}?)`},
		},
		{
			name: "literal block body",
			src: `partners:
  - id: acme
    method: POST
    url: "https://x.example/"
    body: |
      {"click": "{click_id}",

       "amount": {revenu|json}}
`,
			want: []string{`postback.yaml:8:18: partner "acme": body: unknown macro {revenu} (did you mean {revenue}?)`},
		},
		{
			name: "folded block body",
			src: `partners:
  - id: acme
    method: POST
    url: "https://x.example/"
    body: >
      {"click": "{click_id}",
      "amount": {revenue|cents|nope}}
`,
			want: []string{`postback.yaml:7:32: partner "acme": body: unknown filter "nope" in {revenue|cents|nope}`},
		},
		{
			name: "json filter not last in a form body",
			src: `partners:
  - id: acme
    method: POST
    content_type: application/x-www-form-urlencoded
    url: "https://x.example/"
    body: "a={click_id}&b={revenue|json|lower}"
`,
			want: []string{`postback.yaml:6:36: partner "acme": body: filter "json" must be the last one in {revenue|json|lower}`},
		},
		{
			name: "env unset",
			src: `partners:
  - id: acme
    url: "https://x.example/"
    headers: {X-Token: "${env:NOPE_TOKEN}"}
`,
			want: []string{`postback.yaml:4:24: partner "acme": headers.X-Token: environment variable NOPE_TOKEN is not set`},
		},
		{
			name: "env unset in a partner header",
			src: `partners:
  - id: acme
    url: "https://x.example/"
    headers: {X-Token: "${env:NOPE_TOKEN}"}
`,
			want: []string{`postback.yaml:4:24: partner "acme": headers.X-Token: environment variable NOPE_TOKEN is not set`},
		},
		{
			name: "duplicate partner id",
			src: `partners:
  - id: acme
    url: "https://x.example/"
  - id: acme
    url: "https://y.example/"
`,
			want: []string{`postback.yaml:4:5: partner "acme": id: duplicate partner id (first at line 2)`},
		},
		{
			name: "bad and missing ids",
			src: `partners:
  - id: Acme!
    url: "https://x.example/"
  - url: "https://y.example/"
`,
			want: []string{
				`postback.yaml:2:9: partners[0].id: "Acme!" must match [a-z0-9_-]{1,64}`,
				`postback.yaml:4:5: partners[1]: id: required`,
			},
		},
		{
			name: "unknown keys at every level",
			src: `apii: {}
api:
  key: x
delivery:
  timeot: 5s
partners:
  - id: acme
    url: "https://x.example/"
    urls: x
    retry: {max_attempt: 3}
    success: {code: 200}
    signing: {scheme: standard-webhooks, secrets: ["${env:ACME_SECRET}"], algo: x}
    privacy: {consent: true}
`,
			want: []string{
				`postback.yaml:1:1: apii: unknown section (want api, delivery, partners, ops or redis)`,
				`postback.yaml:3:3: api.key: unknown key (want keys, max_body_bytes, dedup_window, wait_replicas, wait_timeout or strict)`,
				`postback.yaml:5:3: delivery.timeot: unknown key (want timeout, allow_private_networks or attempt_log_retention)`,
				`postback.yaml:9:5: partner "acme": urls: unknown key (did you mean url?)`,
				`postback.yaml:10:13: partner "acme": retry.max_attempt: unknown key (want max_attempts, max_age, initial_interval, max_interval, multiplier or jitter)`,
				`postback.yaml:11:15: partner "acme": success.code: unknown key (want status or body_not_match)`,
				`postback.yaml:12:75: partner "acme": signing.algo: unknown key (want scheme or secrets)`,
				`postback.yaml:13:15: partner "acme": privacy.consent: unknown key (want require_consent)`,
			},
		},
		{
			name: "duplicate key",
			src: `partners:
  - id: acme
    url: "https://x.example/"
    method: GET
    method: POST
`,
			want: []string{`postback.yaml:5:5: partner "acme": method: duplicate key`},
		},
		{
			name: "when expression errors",
			src: `partners:
  - id: a
    url: "https://x.example/"
    when: 'revenue > && country'
  - id: b
    url: "https://x.example/"
    when: 'country == 1'
  - id: c
    url: "https://x.example/"
    when: "revenue > 0 &&\n  bogus"
`,
			want: []string{
				`postback.yaml:4:22: partner "a": when: unexpected token Operator("&&")`,
				`postback.yaml:7:20: partner "b": when: invalid operation: == (mismatched types string and int)`,
				`postback.yaml:10:30: partner "c": when: unknown name bogus`,
			},
		},
		{
			name: "signing",
			src: `partners:
  - id: a
    url: "https://x.example/"
    signing: {scheme: hmac, secrets: ["whsec_!!!"]}
  - id: b
    url: "https://x.example/"
    signing: {scheme: standard-webhooks}
  - id: c
    url: "https://x.example/"
    signing: {secrets: []}
`,
			want: []string{
				`postback.yaml:4:23: partner "a": signing.scheme: "hmac": want standard-webhooks`,
				`postback.yaml:4:38: partner "a": signing.secrets: signing: secret 0: invalid base64 after "whsec_" prefix: illegal base64 data at input byte 0`,
				`postback.yaml:7:14: partner "b": signing.secrets: required: at least one secret`,
				`postback.yaml:10:24: partner "c": signing.secrets: signing: no secrets`,
			},
		},
		{
			name: "rate_limit forms",
			src: `partners:
  - id: a
    url: "https://x.example/"
    rate_limit: 100
  - id: b
    url: "https://x.example/"
    rate_limit: 10/x
  - id: c
    url: "https://x.example/"
    rate_limit: 0/s
`,
			want: []string{
				`postback.yaml:4:17: partner "a": rate_limit: "100": want requests per period like 100/s, 6000/m or 10/500ms`,
				`postback.yaml:7:17: partner "b": rate_limit: "10/x": want requests per period like 100/s, 6000/m or 10/500ms`,
				`postback.yaml:10:17: partner "c": rate_limit: "0/s": want requests per period like 100/s, 6000/m or 10/500ms`,
			},
		},
		{
			name: "retry validation at its keys",
			src: `partners:
  - id: a
    url: "https://x.example/"
    retry: {max_attempts: 0, max_age: 1x, multiplier: 0.5, jitter: 2}
  - id: b
    url: "https://x.example/"
    retry:
      initial_interval: 2h
`,
			want: []string{
				`postback.yaml:4:27: partner "a": retry.max_attempts: "0" is not a whole number >= 1`,
				`postback.yaml:4:39: partner "a": retry.max_age: "1x" is not a positive duration like 30s, 5m or 24h`,
				`postback.yaml:4:55: partner "a": retry.multiplier: must be >= 1, got 0.5`,
				`postback.yaml:4:68: partner "a": retry.jitter: must be between 0 and 1, got 2`,
				`postback.yaml:8:7: partner "b": retry.max_interval: must be >= initial_interval (2h0m0s), got 1h0m0s (max_interval not set: its default applies)`,
			},
		},
		{
			name: "success",
			src: `partners:
  - id: a
    url: "https://x.example/"
    success: {status: ["2xx", "2yy", 700], body_not_match: "("}
`,
			want: []string{
				`postback.yaml:4:31: partner "a": success.status: "2yy": want a code like 200, a class like 2xx or a range like 200-204`,
				`postback.yaml:4:38: partner "a": success.status: "700": want a code like 200, a class like 2xx or a range like 200-204`,
				"postback.yaml:4:60: partner \"a\": success.body_not_match: error parsing regexp: missing closing ): `(`",
			},
		},
		{
			name: "method, body and content type",
			src: `partners:
  - id: a
    method: DELETE
    url: "https://x.example/"
  - id: b
    url: "https://x.example/"
    body: '{"a": 1}'
  - id: c
    method: POST
    url: "https://x.example/"
    body: "x"
    content_type: text/xml
`,
			want: []string{
				`postback.yaml:3:13: partner "a": method: "DELETE": want GET, POST or PUT`,
				`postback.yaml:7:11: partner "b": body: a GET request has no body; use method POST or PUT`,
				`postback.yaml:12:19: partner "c": content_type: "text/xml": want application/json, application/x-www-form-urlencoded or text/plain`,
			},
		},
		{
			name: "values of the wrong kind",
			src: `api:
  dedup_window: 0s
  max_body_bytes: 10
delivery:
  allow_private_networks: maybe
partners:
  - id: a
    url: "https://x.example/"
    events: [Install]
    match: some
    require: [clik_id]
    concurrency: -1
    timeout: soon
`,
			want: []string{
				`postback.yaml:2:17: api.dedup_window: "0s" is not a positive duration like 30s, 5m or 24h`,
				`postback.yaml:3:19: api.max_body_bytes: "10" is not a whole number >= 1024`,
				`postback.yaml:5:27: delivery.allow_private_networks: "maybe" is not true or false`,
				`postback.yaml:9:14: partner "a": events: "Install" is not an event name ([a-z0-9_]{1,64})`,
				`postback.yaml:10:12: partner "a": match: "some": want attributed or all`,
				`postback.yaml:11:15: partner "a": require: unknown macro "clik_id"`,
				`postback.yaml:12:18: partner "a": concurrency: "-1" is not a whole number >= 0`,
				`postback.yaml:13:14: partner "a": timeout: "soon" is not a positive duration like 30s, 5m or 24h`,
			},
		},
		{
			name: "records kept shorter than event ids",
			src: `delivery:
  attempt_log_retention: 12h
partners:
  - id: a
    url: "https://x.example/"
`,
			want: []string{`postback.yaml:2:26: delivery.attempt_log_retention: 12h is shorter than api.dedup_window (24h): ` +
				`delivery records must be kept at least as long as event ids are, or a repeated event could be sent again ` +
				`after its records expire; raise attempt_log_retention or lower dedup_window`},
		},
		{
			name: "dedup window longer than the records it relies on",
			src: `api:
  dedup_window: 1440h
partners:
  - id: a
    url: "https://x.example/"
`,
			want: []string{`postback.yaml:2:17: delivery.attempt_log_retention: 720h is shorter than api.dedup_window (1440h): ` +
				`delivery records must be kept at least as long as event ids are, or a repeated event could be sent again ` +
				`after its records expire; raise attempt_log_retention or lower dedup_window`},
		},
		{
			name: "missing url",
			src: `partners:
  - id: a
    events: [install]
`,
			want: []string{`postback.yaml:2:5: partner "a": url: required`},
		},
		{
			name: "invalid YAML",
			src:  "partners:\n  - id: a\n    url: \"x\n    method: GET\n",
			want: []string{`postback.yaml:3:1: invalid YAML: found unexpected end of stream`},
		},
		{
			name: "empty file",
			src:  "",
			want: []string{`postback.yaml: empty config: want api, delivery and partners sections`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, problems(t, tt.src))
		})
	}
}

func TestParse_AllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	got := problems(t, `api:
  keys: ["short"]
partners:
  - id: b
    url: "https://x.example/?a={clik_id}&e={evnt}&r={revenue|cent}&c={campaign}"
    retry: {max_attempts: 0}
  - id: a
    url: "https://x.example/?a={click_id|nope}"
    headers: {X-Token: "${env:UNSET}"}
`)
	// In file order, across sections and partners, and every wrong macro
	// of one template.
	require.Equal(t, []string{
		`postback.yaml:2:10: api.keys[0]: API key shorter than 16 characters`,
		`postback.yaml:5:32: partner "b": url: unknown macro {clik_id} (did you mean {click_id}?)`,
		`postback.yaml:5:44: partner "b": url: unknown macro {evnt} (did you mean {event}?)`,
		`postback.yaml:5:62: partner "b": url: unknown filter "cent" in {revenue|cent} (did you mean "cents"?)`,
		`postback.yaml:6:27: partner "b": retry.max_attempts: "0" is not a whole number >= 1`,
		`postback.yaml:8:42: partner "a": url: unknown filter "nope" in {click_id|nope}`,
		`postback.yaml:9:24: partner "a": headers.X-Token: environment variable UNSET is not set`,
	}, got)
}

func TestParse_Partner(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("postback.yaml", []byte(`api:
  keys: ["${env:API_KEY}"]
delivery:
  timeout: 7s
partners:
  - id: acme_ads
    events: [install, purchase]
    match: all
    when: 'revenue > 0 && country in ["US", "CA"]'
    require: [click_id, params.level]
    method: post
    url: "https://pb.acme.example/c?click_id={click_id}"
    headers: {X-Token: "${env:ACME_TOKEN}"}
    body: |
      {"click": "{click_id}",
       "amount": {revenue|json}}
    signing: {scheme: standard-webhooks, secrets: ["${env:ACME_SECRET}"]}
    retry: {max_attempts: 3, max_age: 1h, initial_interval: 1s, max_interval: 1m, multiplier: 3, jitter: 0}
    rate_limit: 5/100ms
    concurrency: 4
    success: {status: 200-204, body_not_match: "(?i)error"}
    privacy: {require_consent: true}
  - id: slow
    enabled: false
    url: "https://slow.example/{event}"
    rate_limit: 6000/m
`), env)
	require.NoError(t, err)
	require.Equal(t, []string{"0123456789abcdef0123"}, cfg.API.Keys)
	require.Len(t, cfg.Partners, 2)

	p := cfg.Partner("acme_ads")
	require.True(t, p.Enabled)
	require.Equal(t, []string{"install", "purchase"}, p.Events)
	require.Equal(t, config.MatchAll, p.Match)
	require.Equal(t, `revenue > 0 && country in ["US", "CA"]`, p.When.String())
	require.Equal(t, []config.Requirement{{Field: templates.FieldClickID}, {Param: "level"}}, p.Require)
	require.Equal(t, "POST", p.Method)
	require.Equal(t, "application/json", p.ContentType)
	require.Equal(t, "{\"click\": \"{click_id}\",\n \"amount\": {revenue|json}}\n", p.Body.Source())
	require.Len(t, p.Headers, 1)
	require.Equal(t, "X-Token", p.Headers[0].Name)
	require.Equal(t, "tok-123", p.Headers[0].Value.Source())
	require.NotNil(t, p.Signer)
	require.Equal(t, 3, p.Retry.MaxAttempts)
	require.Equal(t, time.Hour, p.Retry.MaxAge)
	require.Equal(t, 3.0, p.Retry.Multiplier)
	require.Equal(t, config.RateLimit{Requests: 5, Per: 100 * time.Millisecond}, p.RateLimit)
	require.Equal(t, 4, p.Concurrency)
	require.Equal(t, 7*time.Second, p.Timeout, "a partner without timeout takes delivery.timeout")
	require.True(t, p.RequireConsent)
	require.True(t, p.Success.Match(204, []byte("ok")))
	require.False(t, p.Success.Match(200, []byte("ERROR: bad")))
	require.False(t, p.Success.Match(205, nil))

	slow := cfg.Partner("slow")
	require.False(t, slow.Enabled)
	require.Equal(t, config.RateLimit{Requests: 6000, Per: time.Minute}, slow.RateLimit)
	require.Equal(t, 10, slow.Retry.MaxAttempts, "retry defaults")
}

func TestCheckData_Warnings(t *testing.T) {
	t.Parallel()
	_, warnings, err := config.CheckData("postback.yaml", []byte(`delivery:
  allow_private_networks: true
partners:
  - id: a
    url: "http://x.example/"
    signing: {secrets: ["inline-secret", "${env:ACME_SECRET}"]}
  - id: b
    match: all
    url: "https://y.example/"
`), env)
	require.NoError(t, err)
	got := make([]string, len(warnings))
	for i, w := range warnings {
		got[i] = w.String()
	}
	require.Equal(t, []string{
		`postback.yaml:1:1: warning: api.keys: no API keys: the API refuses to start unless run with --insecure-no-auth`,
		`postback.yaml:2:27: warning: delivery.allow_private_networks: the SSRF guard is off: postbacks may reach loopback, private and cloud metadata addresses; for local tests only`,
		`postback.yaml:5:10: warning: partner "a": url: plain http:// sends conversions unencrypted; use https://`,
		`postback.yaml:6:25: warning: partner "a": signing.secrets: secret written in the file; read it with ${env:NAME} instead`,
		`postback.yaml:8:12: warning: partner "b": match: match: all with no events and no when: every event of every app goes to this partner`,
	}, got)
}

func TestLoad_MissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := config.Load(path)
	require.EqualError(t, err, "config file "+path+" not found (name it with --config or POSTBACK_CONFIG)")
}

func TestLoad_File(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "postback.yaml")
	require.NoError(t, os.WriteFile(path, []byte("partners:\n  - id: a\n    url: \"https://x.example/{clik_id}\"\n"), 0o600))
	_, err := config.Load(path)
	require.EqualError(t, err, path+`:3:29: partner "a": url: unknown macro {clik_id} (did you mean {click_id}?)`)
}

// An unset API key variable does not fail the load (ops commands and
// workers read the same file without the API's secrets); the API refuses
// to start on it.
func TestParse_APIKeyEnvUnset(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("postback.yaml", []byte("api:\n  keys: [\"${env:NOPE_KEY}\", \"a-literal-key-0123456789\"]\npartners: []\n"), env)
	require.NoError(t, err)
	require.Equal(t, []string{"a-literal-key-0123456789"}, cfg.API.Keys)
	require.Equal(t, []string{"postback.yaml:2:10: api.keys[0]: environment variable NOPE_KEY is not set"}, cfg.API.KeyProblems)
}

func TestParse_WaitReplicas(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("postback.yaml", []byte("api:\n  wait_replicas: 2\n  wait_timeout: 250ms\n"), env)
	require.NoError(t, err)
	require.Equal(t, 2, cfg.API.WaitReplicas)
	require.Equal(t, 250*time.Millisecond, cfg.API.WaitTimeout)

	cfg, err = config.Parse("postback.yaml", []byte("api:\n  dedup_window: 1h\n"), env)
	require.NoError(t, err)
	require.Zero(t, cfg.API.WaitReplicas, "off by default")
	require.Equal(t, config.DefaultWaitTimeout, cfg.API.WaitTimeout)
}

func TestParse_Strict(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("postback.yaml", []byte("api:\n  dedup_window: 1h\n"), env)
	require.NoError(t, err)
	require.False(t, cfg.API.Strict, "off by default: invalid optional fields are dropped")
	for _, yaml := range []string{"api:\n  strict: true\n", "api: {strict: true}\n"} {
		cfg, err = config.Parse("postback.yaml", []byte(yaml), env)
		require.NoError(t, err)
		require.True(t, cfg.API.Strict)
		cfg, err = config.ParseIntake("postback.yaml", []byte(yaml), env)
		require.NoError(t, err)
		require.True(t, cfg.API.Strict, "the Go client reads it too")
	}
	require.Equal(t, []string{`postback.yaml:2:11: api.strict: "sometimes" is not true or false`},
		problems(t, "api:\n  strict: sometimes\n"))
}

// A params key no event can carry (too long, or with characters events
// refuse) is a load error, in a template and in require: before, such a
// partner loaded and its macro was always empty.
func TestParse_ImpossibleParamsKey(t *testing.T) {
	long := strings.Repeat("k", 65)
	got := problems(t, `
api:
  keys: [k-0123456789abcdef]
partners:
  - id: p1
    url: "https://p.example/c?x={params.`+long+`}"
    require: ["params.a b"]
`)
	require.Len(t, got, 2, "%q", got)
	require.Contains(t, got[0], "no event can carry this key")
	require.Contains(t, got[1], "no event can carry this key")
}

// A partner URL whose literal host the SSRF guard blocks loads, but
// validate says every postback to it will be refused.
func TestCheckData_WarnsOfBlockedLiteralHost(t *testing.T) {
	for _, host := range []string{"127.0.0.1:9090", "localhost", "[::1]", "10.1.2.3", "169.254.169.254", "0x7f000001"} {
		_, warns, err := config.CheckData("postback.yaml", []byte(`
api:
  keys: [k-0123456789abcdef]
partners:
  - id: p1
    url: "https://`+host+`/c?x={click_id}"
`), env)
		require.NoError(t, err, host)
		var found bool
		for _, w := range warns {
			found = found || strings.Contains(w.String(), "the SSRF guard blocks every postback to it")
		}
		require.True(t, found, "%s: %v", host, warns)
	}
	_, warns, err := config.CheckData("postback.yaml", []byte(`
api:
  keys: [k-0123456789abcdef]
partners:
  - id: p1
    url: "https://pb.example.com/c?x={click_id}"
`), env)
	require.NoError(t, err)
	for _, w := range warns {
		require.NotContains(t, w.String(), "SSRF guard blocks")
	}
}
