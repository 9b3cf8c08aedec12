package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cliConfig is a valid config with partners a and b.
const cliConfig = `api:
  keys: ["0123456789abcdef0123"]
partners:
  - id: a
    url: "https://a.example/{click_id}"
  - id: b
    url: "https://b.example/{click_id}"
`

// requireOneLine checks that stderr is exactly one line, want, with no
// trace of a panic.
func requireOneLine(t *testing.T, r cliResult, want string) {
	t.Helper()
	require.Equal(t, want+"\n", r.stderr)
	require.NotContains(t, r.stderr, "goroutine")
	require.NotContains(t, r.stderr, "panic")
}

func TestRun_UnreachableRedis(t *testing.T) {
	cfg := partnersFile(t, "postback.yaml", cliConfig)
	r := partnersRun(t, "-c", cfg, "--redis-url", "redis://127.0.0.1:1/0", "serve", "--listen", "127.0.0.1:0")
	require.Equal(t, 1, r.code)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	require.True(t, strings.HasPrefix(r.stderr, "postback: cannot reach Redis at redis://127.0.0.1:1/0: "), r.stderr)
	require.NotContains(t, r.stderr, "goroutine")
	require.NotContains(t, r.stderr, "panic")
	require.Empty(t, r.stdout)
}

func TestRun_ConfigProblems(t *testing.T) {
	cfg := partnersFile(t, "postback.yaml", `api:
  keys: ["0123456789abcdef0123"]
partners:
  - id: acme
    url: "https://pb.acme.example/c?click_id={clik_id}"
  - id: acme
    url: "https://pb.acme.example/c?x={click_id|lower:1}"
`)
	for _, cmd := range []string{"serve", "api", "worker"} {
		t.Run(cmd, func(t *testing.T) {
			// The config is read before Redis is dialled: no Redis needed
			// to learn what is wrong with it.
			r := partnersRun(t, "-c", cfg, "--redis-url", "redis://127.0.0.1:1/0", cmd)
			require.Equal(t, 1, r.code)
			require.Equal(t, "postback: "+cfg+`:5:46: partner "acme": url: unknown macro {clik_id} (did you mean {click_id}?)
`+cfg+`:6:5: partner "acme": id: duplicate partner id (first at line 4)
`+cfg+`:7:49: partner "acme": url: filter "lower" takes no argument, in {click_id|lower:1}
`, r.stderr)
		})
	}
}

func TestRun_MissingConfig(t *testing.T) {
	path := t.TempDir() + "/postback.yaml"
	for _, args := range [][]string{
		{"serve"},
		{"partners", "list"},
		{"partners", "validate"},
	} {
		r := partnersRun(t, append([]string{"-c", path}, args...)...)
		require.Equal(t, 1, r.code, args)
		requireOneLine(t, r, "postback: config file "+path+" not found (name it with --config or POSTBACK_CONFIG)")
	}
}

func TestRun_UsageErrorsExitTwo(t *testing.T) {
	cfg := partnersFile(t, "postback.yaml", cliConfig)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "postback: flag provided but not defined: -nope"},
		{[]string{"--log-format", "xml", "serve"}, `postback: --log-format "xml": want text or json`},
		{[]string{"--log-level", "loud", "worker"}, `postback: --log-level "loud": want debug, info, warn or error`},
		{[]string{"partners", "nope"}, `postback: partners: unknown command "nope" (want list, validate, render, test, pause, resume, presets or add)`},
		{[]string{"partners", "render", "--bogus"}, "postback: flag provided but not defined: -bogus"},
		{[]string{"partners", "render", "--partner", "a"}, "postback: partners render: --partner and --event are required"},
		{[]string{"partners", "test", "--event", "x.json"}, "postback: partners test: --partner and --event are required"},
		{[]string{"partners", "list", "-o", "xml"}, `postback: -o "xml": want table or json`},
		{[]string{"worker", "--dequeuers", "-1"}, "postback: --dequeuers -1: want a positive number, or 0 for the default"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := partnersRun(t, append([]string{"-c", cfg}, tt.args...)...)
			require.Equal(t, 2, r.code, r.stderr)
			requireOneLine(t, r, tt.want)
		})
	}
}

func TestRun_BadInput(t *testing.T) {
	cfg := partnersFile(t, "postback.yaml", cliConfig)
	good := partnersFile(t, "good.json", `{"id":"e1","name":"install","click_id":"c"}`)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown partner", []string{"partners", "render", "--partner", "nope", "--event", good},
			`postback: unknown partner "nope" (partners: a, b)`},
		{"unknown partner, test", []string{"partners", "test", "--partner", "nope", "--event", good},
			`postback: unknown partner "nope" (partners: a, b)`},
	}
	for _, ev := range []struct{ name, json, want string }{
		{"malformed JSON", `{"id":"e1","name":`, `: malformed JSON`},
		{"missing id", `{"name":"install"}`, `: id: required`},
		{"missing name", `{"id":"e1"}`, `: name: required`},
	} {
		path := partnersFile(t, "event.json", ev.json)
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{ev.name, []string{"partners", "render", "-p", "a", "-e", path}, "postback: event " + path + ev.want})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := partnersRun(t, append([]string{"-c", cfg}, tt.args...)...)
			require.Equal(t, 1, r.code, r.stderr)
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
			require.True(t, strings.HasPrefix(r.stderr, tt.want), "stderr %q, want prefix %q", r.stderr, tt.want)
			require.Empty(t, r.stdout)
		})
	}
}
