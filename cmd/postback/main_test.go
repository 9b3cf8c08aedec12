package main

import (
	"os"
	"testing"

	"github.com/postbackhq/postback/internal/redistest"
)

// TestMain starts one redis-server for the package's tests (shared: add
// tests, not another TestMain). With POSTBACK_TEST_RUN_MAIN set, the test
// binary is the postback command instead, so that tests can run real
// postback processes (see startProcess) without building the binary.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(append([]string{"postback"}, os.Args[1:]...), os.Stdout, os.Stderr))
	}
	redistest.Main(m)
}
