package main

import (
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/version"
	"github.com/postbackhq/postback/internal/wire"
)

// versionInfo is what `postback version -o json` prints.
type versionInfo struct {
	Version string        `json:"version"`
	Commit  string        `json:"commit"`
	Go      string        `json:"go"`
	Formats []wire.Format `json:"stored_formats"`
}

// printVersion prints the version, the commit, and the versions of each
// stored form this build reads and writes: what an upgrade must respect
// (workers read every form the APIs beside them write).
func printVersion(c *cli.Context) error {
	info := versionInfo{Version: version.Version, Commit: version.BuildCommit(), Go: goruntime.Version(), Formats: wire.Formats()}
	if c.String("output") == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "postback %s (commit %s, %s)\n", info.Version, info.Commit, info.Go)
	fmt.Fprintln(w, "stored formats:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range info.Formats {
		fmt.Fprintf(tw, "  %s\treads %s\twrites %s\n", f.Name, strings.Join(f.Reads, ", "), strings.Join(f.Writes, ", "))
	}
	return tw.Flush()
}
