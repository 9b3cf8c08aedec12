package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
)

// TestReadyz_RedisRefusingWrites: a Redis that answers but refuses every
// write (out of memory under noeviction) makes /readyz answer 503 saying
// so, as every event would be answered 503; once it takes writes again
// /readyz is 200 by itself.
func TestReadyz_RedisRefusingWrites(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	srv := redistest.Own(t, redistest.Options{Args: []string{"--maxmemory-policy", "noeviction"}})
	ctx := context.Background()
	admin, err := store.OpenRedis(srv.URL(0))
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })

	stacks := map[string]*stacktest.Stack{}
	for i, tr := range stacktest.Transports {
		s, _, _ := setupTwo(t, stacktest.Options{RedisURL: srv.URL(i), NoWorker: true, NetHTTP: tr.NetHTTP})
		stacks[tr.Name] = s
		status, body := s.Get(t, "/readyz")
		require.Equal(t, http.StatusOK, status, body)
	}
	readyz := func(t *testing.T, s *stacktest.Stack, want int) map[string]any {
		t.Helper()
		var status int
		var body map[string]any
		require.Eventually(t, func() bool {
			status, body = s.Get(t, "/readyz")
			return status == want
		}, 10*time.Second, 50*time.Millisecond, "/readyz: want %d", want)
		return body
	}

	require.NoError(t, admin.ConfigSet(ctx, "maxmemory", "1").Err())
	for name, s := range stacks {
		status, body := s.Post(t, "/v1/events", "application/json", `{"id":"oom","name":"install"}`)
		require.Equal(t, http.StatusServiceUnavailable, status, "%s: %v", name, body)
		e := readyz(t, s, http.StatusServiceUnavailable)["error"].(map[string]any)
		require.Equal(t, "unavailable", e["code"], name)
		require.Contains(t, e["message"], "refuses writes", name)
		require.Contains(t, e["message"], "OOM", name)
	}

	require.NoError(t, admin.ConfigSet(ctx, "maxmemory", "0").Err())
	for name, s := range stacks {
		readyz(t, s, http.StatusOK)
		status, body := s.Post(t, "/v1/events", "application/json", fmt.Sprintf(`{"id":"after-%s","name":"install"}`, name))
		require.Equal(t, http.StatusAccepted, status, "%s: %v", name, body)
	}
}
