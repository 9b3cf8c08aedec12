package opsevent_test

import (
	"testing"

	"github.com/postbackhq/postback/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
