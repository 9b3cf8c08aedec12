// Package version holds the program's version, set at build time
// (-ldflags "-X github.com/postbackhq/postback/internal/version.Version=…").
package version

// Version is the program version, sent to partners in User-Agent.
var Version = "dev"
