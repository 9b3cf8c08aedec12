package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// completionCommand prints the completion script of a shell. Each script
// asks the program itself what fits (the hidden __complete command), so
// the candidates follow the commands, flags and config of the binary
// installed.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "bash:  source <(postback completion bash)    (or save it in /etc/bash_completion.d/postback)\n" +
			"zsh:   source <(postback completion zsh)     (or save it as _postback in a directory of $fpath)\n" +
			"fish:  postback completion fish > ~/.config/fish/completions/postback.fish\n\n" +
			"Commands, flags, flag values and partner ids (from the config of --config or POSTBACK_CONFIG) complete.",
		Action: func(c *cli.Context) error {
			script, ok := completionScripts[c.Args().First()]
			if !ok || c.Args().Len() != 1 {
				return usageError("completion: want one of bash, zsh or fish")
			}
			_, err := io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

// completeCommand answers a completion script: given the words of the
// command line after the program's name (the last one being completed,
// possibly empty), it prints the candidates, one a line. None lets the
// shell complete file names.
func completeCommand() *cli.Command {
	return &cli.Command{
		Name:            "__complete",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			words := c.Args().Slice()
			if len(words) > 0 && words[0] == "--" {
				words = words[1:]
			}
			for _, s := range completions(c.App, words, os.Getenv) {
				fmt.Fprintln(c.App.Writer, s)
			}
			return nil
		},
	}
}

// flagValues are the values of flags that take one of a few.
var flagValues = map[string][]string{
	"log-format": {"text", "json"},
	"log-level":  {"debug", "info", "warn", "error"},
	"reason":     {"rejected", "blocked", "render", "exhausted"},
	"e2e-intake": {"batch", "single"},
	"output":     {"table", "json"},
}

// completions are the candidates for the last of words.
func completions(app *cli.App, words []string, getenv func(string) string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, done := words[len(words)-1], words[:len(words)-1]
	config := getenv("POSTBACK_CONFIG")
	flags, cmds := app.Flags, app.Commands
	var cmd *cli.Command
	var pending cli.Flag // a flag whose value is the next word
	positional := 0
	for _, w := range done {
		if pending != nil {
			if hasName(pending, "config") {
				config = w
			}
			pending = nil
			continue
		}
		if isFlag(w) {
			name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			f := findFlag(flags, name)
			switch {
			case f != nil && hasName(f, "config") && hasValue:
				config = value
			case f != nil && takesValue(f) && !hasValue:
				pending = f
			}
			continue
		}
		if sub := findCommand(cmds, w); sub != nil {
			cmd, flags, cmds, positional = sub, sub.Flags, sub.Subcommands, 0
			continue
		}
		positional++
	}
	var out []string
	switch {
	case pending != nil:
		out = flagValueCandidates(pending, cmd, config)
	case isFlag(cur) || cur == "-":
		for _, f := range flags {
			for _, n := range f.Names() {
				if len(n) > 1 {
					out = append(out, "--"+n)
				}
			}
		}
		if cmd == nil || len(cmd.Subcommands) == 0 {
			out = append(out, "--help")
		}
	case len(cmds) > 0:
		for _, c := range cmds {
			if !c.Hidden {
				out = append(out, c.Name)
			}
		}
	case cmd != nil && cmd.Name == "completion" && positional == 0:
		out = []string{"bash", "fish", "zsh"}
	case cmd != nil && strings.HasPrefix(cmd.ArgsUsage, "PARTNER") && positional == 0:
		out = configPartnerIDs(config)
	}
	kept := out[:0]
	for _, s := range out {
		if strings.HasPrefix(s, cur) {
			kept = append(kept, s)
		}
	}
	return kept
}

// flagValueCandidates are the values that fit flag f of command cmd; none
// for a file or a free value.
func flagValueCandidates(f cli.Flag, cmd *cli.Command, config string) []string {
	switch {
	case hasName(f, "partner"):
		return configPartnerIDs(config)
	case hasName(f, "output") && cmd != nil && cmd.Name == "enqueue":
		return []string{"text", "json"}
	}
	return flagValues[f.Names()[0]]
}

// partnerIDs reads the partner ids of the config file at path (default
// postback.yaml) as plain YAML: a file with problems the loader would
// refuse still names its partners, and no ${env:…} needs to be set.
func configPartnerIDs(path string) []string {
	if path == "" {
		path = "postback.yaml"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var doc struct {
		Partners []struct {
			ID string `yaml:"id"`
		} `yaml:"partners"`
	}
	if yaml.Unmarshal(b, &doc) != nil {
		return nil
	}
	var ids []string
	for _, p := range doc.Partners {
		if p.ID != "" && !slices.Contains(ids, p.ID) {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		if hasName(f, name) {
			return f
		}
	}
	return nil
}

func hasName(f cli.Flag, name string) bool { return slices.Contains(f.Names(), name) }

func takesValue(f cli.Flag) bool {
	v, ok := f.(cli.DocGenerationFlag)
	return ok && v.TakesValue()
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// completionScripts are the scripts `postback completion SHELL` prints.
// Each passes the words up to the cursor to `postback __complete --`
// (the program as typed, so ./bin/postback completes too), and lets the
// shell complete file names when nothing else fits.
var completionScripts = map[string]string{
	"bash": `# bash completion for postback: source <(postback completion bash)
_postback() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local out
    out="$("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" || return 0
    COMPREPLY=()
    [ -z "$out" ] && return 0
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$out" -- "$cur"))
}
complete -o default -o nosort -F _postback postback
`,
	"zsh": `#compdef postback
# zsh completion for postback: source <(postback completion zsh)
_postback() {
    local -a out
    out=("${(@f)$("${words[1]}" __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if (( ${#out} == 0 )) || [[ -z "${out[1]}" ]]; then
        _files
        return
    fi
    compadd -Q -- "${out[@]}"
}
if [[ "${funcstack[1]}" == "_postback" ]]; then
    _postback "$@"
else
    compdef _postback postback
fi
`,
	"fish": `# fish completion for postback: postback completion fish > ~/.config/fish/completions/postback.fish
function __postback_candidates
    set -l tokens (commandline -opc) (commandline -ct)
    $tokens[1] __complete -- $tokens[2..-1] 2>/dev/null
end
function __postback_has_candidates
    test -n "$(__postback_candidates)"
end
complete -c postback -f -n __postback_has_candidates -a '(__postback_candidates)'
complete -c postback -F -n 'not __postback_has_candidates'
`,
}
