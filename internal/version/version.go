// Package version holds the program's version and commit, set at build
// time (-ldflags "-X github.com/postbackhq/postback/internal/version.Version=…
// -X github.com/postbackhq/postback/internal/version.Commit=…").
package version

import "runtime/debug"

// Version is the program version, sent to partners in User-Agent.
var Version = "dev"

// Commit is the commit the program was built from. When the build did not
// set it, it is read from the build's VCS stamp, if any.
var Commit = ""

// BuildCommit is Commit, or the VCS revision go build stamped (its first
// 12 digits, with "+dirty" for a modified tree), or "unknown".
func BuildCommit() string {
	if Commit != "" {
		return Commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	rev = rev[:min(len(rev), 12)]
	if dirty {
		rev += "+dirty"
	}
	return rev
}
