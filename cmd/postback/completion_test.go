package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// asCLI makes the test binary act as postback when a completion script
// runs it: the scripts call the program they complete.
const asCLI = "POSTBACK_TEST_AS_CLI"

func init() {
	if os.Getenv(asCLI) == "1" {
		os.Exit(run(os.Args, os.Stdout, os.Stderr))
	}
}

// bashComplete runs bash's completion of words (the cursor on the last
// one) with the script `postback completion bash` prints, as bash does on
// TAB: COMP_WORDS and COMP_CWORD set, then the completion function.
func bashComplete(t *testing.T, env []string, words ...string) []string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on PATH")
	}
	r := partnersRun(t, "completion", "bash")
	require.Zero(t, r.code, r.stderr)
	script := filepath.Join(t.TempDir(), "postback.bash")
	require.NoError(t, os.WriteFile(script, []byte(r.stdout), 0o600))
	exe, err := os.Executable()
	require.NoError(t, err)

	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = strconv.Quote(w)
	}
	prog := `source "$SCRIPT"
complete -p postback >/dev/null || { echo "no completion registered" >&2; exit 3; }
COMP_WORDS=("$EXE" ` + strings.Join(quoted, " ") + `)
COMP_CWORD=` + strconv.Itoa(len(words)) + `
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
_postback postback "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
	cmd.Env = append(os.Environ(), "SCRIPT="+script, "EXE="+exe, asCLI+"=1")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Fields(string(out))
}

func TestCompletion_BashCommands(t *testing.T) {
	require.Equal(t, []string{"retry"}, bashComplete(t, nil, "dlq", "re"))
	require.Equal(t, []string{"--partner"}, bashComplete(t, nil, "dlq", "list", "--p"))
	require.Equal(t, []string{"table", "json"}, bashComplete(t, nil, "stats", "-o", ""))
	require.Equal(t, []string{"bash", "fish", "zsh"}, bashComplete(t, nil, "completion", ""))
	require.NotContains(t, bashComplete(t, nil, ""), "__complete", "the hidden command is not offered")
}

// Each shell's script, and a usage error for any other.
func TestCompletion_Scripts(t *testing.T) {
	for shell, want := range map[string]string{"bash": "complete -o default -o nosort -F _postback postback", "zsh": "compdef _postback postback", "fish": "complete -c postback"} {
		r := partnersRun(t, "completion", shell)
		require.Zero(t, r.code, r.stderr)
		require.Contains(t, r.stdout, want)
		require.Contains(t, r.stdout, "__complete --")
	}
	r := partnersRun(t, "completion", "tcsh")
	require.Equal(t, 2, r.code)
	requireOneLine(t, r, "postback: completion: want one of bash, zsh or fish")
}

func TestVersion(t *testing.T) {
	r := partnersRun(t, "version")
	require.Zero(t, r.code, r.stderr)
	require.Regexp(t, `^postback \S+ \(commit \S+, go\S+\)\nstored formats:\n`, r.stdout)
	require.Contains(t, r.stdout, "task payload  reads json, 1, 2  writes 1, 2 (with lifecycle fields, an order or a traceparent)")
	require.Contains(t, r.stdout, "event claim")
	r = partnersRun(t, "version", "-o", "json")
	require.Zero(t, r.code, r.stderr)
	var info struct {
		Version string `json:"version"`
		Formats []struct {
			Name   string   `json:"name"`
			Reads  []string `json:"reads"`
			Writes []string `json:"writes"`
		} `json:"stored_formats"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &info))
	require.NotEmpty(t, info.Version)
	require.Len(t, info.Formats, 4)
	require.Equal(t, []string{"1", "2"}, info.Formats[2].Reads)
	require.Equal(t, "key layout", info.Formats[3].Name)
}

func TestCompletion_BashPartnerIDs(t *testing.T) {
	cfg := partnersFile(t, "postback.yaml", cliConfig+"  - id: acme_ads\n    url: \"https://c.example/{click_id}\"\n  - id: acme_eu\n    url: \"https://d.example/{click_id}\"\n")
	// From --config, as the flag's value.
	require.Equal(t, []string{"acme_ads", "acme_eu"}, bashComplete(t, nil, "-c", cfg, "dlq", "retry", "--partner", "ac"))
	// From POSTBACK_CONFIG, as a command's argument.
	require.Equal(t, []string{"a", "b", "acme_ads", "acme_eu"}, bashComplete(t, []string{"POSTBACK_CONFIG=" + cfg}, "partners", "pause", ""))
}

// shellScript writes the script `postback completion shell` prints, and a
// directory holding a `postback` that is the test binary acting as the CLI.
func shellScript(t *testing.T, shell string) (script, bin string) {
	t.Helper()
	if _, err := exec.LookPath(shell); err != nil {
		t.Skipf("no %s on PATH", shell)
	}
	r := partnersRun(t, "completion", shell)
	require.Zero(t, r.code, r.stderr)
	dir := t.TempDir()
	script = filepath.Join(dir, "postback."+shell)
	require.NoError(t, os.WriteFile(script, []byte(r.stdout), 0o600))
	exe, err := os.Executable()
	require.NoError(t, err)
	bin = filepath.Join(dir, "bin")
	require.NoError(t, os.Mkdir(bin, 0o700))
	require.NoError(t, os.Symlink(exe, filepath.Join(bin, "postback")))
	return script, bin
}

func shellEnv(bin, cfg string) []string {
	return append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "POSTBACK_CONFIG="+cfg, asCLI+"=1")
}

// zsh's script, run with zsh's completion builtins stood in for: what it
// would offer, or that it leaves the word to file completion.
func TestCompletion_Zsh(t *testing.T) {
	script, bin := shellScript(t, "zsh")
	cfg := partnersFile(t, "postback.yaml", cliConfig)
	prog := `compdef() { :; }; source "$SCRIPT"
compadd() { shift 2; print -l -- "$@"; }; _files() { print FILES; }
words=(postback dlq retry --partner ""); CURRENT=5; _postback; print SEP
words=(postback dlq re); CURRENT=3; _postback; print SEP
words=(postback enqueue ""); CURRENT=3; _postback`
	cmd := exec.Command("zsh", "-f", "-c", prog)
	cmd.Env = append(shellEnv(bin, cfg), "SCRIPT="+script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "a\nb\nSEP\nretry\nSEP\nFILES\n", string(out))
}

// fish's script, through fish's own `complete -C`.
func TestCompletion_Fish(t *testing.T) {
	script, bin := shellScript(t, "fish")
	cfg := partnersFile(t, "postback.yaml", cliConfig)
	prog := `source $SCRIPT
complete -C 'postback dlq re'
echo ---
complete -C 'postback partners pause '`
	cmd := exec.Command("fish", "--no-config", "-c", prog)
	cmd.Env = append(shellEnv(bin, cfg), "SCRIPT="+script)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "retry\n---\na\nb\n", string(out))
}
