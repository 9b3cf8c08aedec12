// Package ops is what operators do with postback's state, for the CLI and
// the HTTP API alike: list, show, export, purge and replay dead letters
// (DLQ), and read per-partner stats.
package ops
