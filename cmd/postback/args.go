package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst returns args with each command's flags moved in front of its
// positional arguments, so that `postback dlq show ID -o json` reads as
// `postback dlq show -o json ID`: urfave/cli v2 stops reading a command's
// flags at its first positional argument. A flag's value moves with it,
// unless the flag is a bool or is written --name=value. "--" still ends
// the flags: what follows it stays positional, in order.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	flags, cmds, rest := app.Flags, app.Commands, args[1:]
	for {
		// The flags of this level, up to its first positional: the name
		// of a subcommand, or the first argument of a leaf.
		i := 0
		for i < len(rest) && isFlag(rest[i]) && rest[i] != "--" {
			i += flagWidth(flags, rest, i)
		}
		i = min(i, len(rest))
		sub := (*cli.Command)(nil)
		if i < len(rest) {
			for _, c := range cmds {
				if c.HasName(rest[i]) {
					sub = c
				}
			}
		}
		switch {
		case sub == nil && len(cmds) > 0:
			// Not a command of this level: cli reports it as typed.
			return append(out, rest...)
		case sub == nil:
			return append(out, reorder(flags, rest)...)
		}
		out = append(out, rest[:i+1]...)
		flags, cmds, rest = sub.Flags, sub.Subcommands, rest[i+1:]
	}
}

// reorder moves the flags of one command, with their values, in front of
// its positional arguments.
func reorder(flags []cli.Flag, args []string) []string {
	var front, pos []string
	for i := 0; i < len(args); {
		a := args[i]
		if a == "--" {
			return append(append(append(front, "--"), pos...), args[i+1:]...)
		}
		if !isFlag(a) {
			pos = append(pos, a)
			i++
			continue
		}
		n := min(flagWidth(flags, args, i), len(args)-i)
		front = append(front, args[i:i+n]...)
		i += n
	}
	return append(front, pos...)
}

// isFlag reports whether a is written as a flag ("-" alone is stdin).
func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// flagWidth is how many arguments the flag at args[i] takes up: 2 when
// its value is the next argument, else 1.
func flagWidth(flags []cli.Flag, args []string, i int) int {
	name := strings.TrimLeft(args[i], "-")
	if strings.Contains(name, "=") {
		return 1
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if v, ok := f.(cli.DocGenerationFlag); ok && v.TakesValue() {
				return 2
			}
			return 1
		}
	}
	return 1 // unknown: cli reports it
}
