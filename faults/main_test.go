//go:build faults

package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// bin is the postback binary built once for the suite.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Println("faults: SKIP: redis-server is not on PATH; the fault suite needs real Redis processes (apt-get install redis-server)")
		return 0
	}
	dir, err := os.MkdirTemp("", "postback-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "postback")
	build := exec.Command("go", "build", "-o", bin, "github.com/postbackhq/postback/cmd/postback")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: build postback: %v\n", err)
		return 1
	}
	return m.Run()
}
