package main

import (
	"testing"

	"github.com/postbackhq/postback/internal/redistest"
)

// TestMain starts one redis-server for the package's tests (shared: add
// tests, not another TestMain).
func TestMain(m *testing.M) { redistest.Main(m) }
