package main

import (
	"encoding/json"
	"io"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// outputFlag is -o of every listing command.
func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "table or json (default: table on a TTY, else json)"}
}

// outputFormat reads -o: "table" or "json", defaulting to table on a TTY.
func outputFormat(c *cli.Context) (string, error) {
	switch f := c.String("output"); f {
	case "table", "json":
		return f, nil
	case "":
		if f, ok := c.App.Writer.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return "table", nil
		}
		return "json", nil
	default:
		return "", usageError("-o %q: want table or json", f)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
