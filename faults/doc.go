// Package faults is postback's fault-injection suite: real redis-server
// and real postback processes (api, worker, serve) are killed, stopped and
// failed over under load, and each scenario ends by counting what a real
// HTTP partner received against what the API accepted.
//
// The tests carry the build tag faults, so `go test ./...` skips them;
// `make test-faults` runs them:
//
//	go test -tags faults -count=1 -timeout 10m ./faults/
package faults
