package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/stacktest"
)

func TestErasure_ErasesPendingTasks(t *testing.T) {
	t.Parallel()
	onBoth(t, testErasure)
}

func testErasure(t *testing.T, netHTTP bool) {
	s, _, _ := setupTwo(t, stacktest.Options{NetHTTP: netHTTP, NoWorker: true})
	const ev = `{"id":"er-1","name":"purchase","click_id":"c","attribution":{"partner":"acme_ads"},` +
		`"device":{"ip":"198.51.100.23","user_agent":"EraseAgent/1"},"user":{"email":"gone.user@example.com","customer_user_id":"cust-gone-1"}}`
	code, _ := s.Post(t, "/v1/events", "application/json", ev)
	require.Equal(t, http.StatusAccepted, code)
	require.True(t, redisHolds(t, s, "gone.user@example.com"))

	code, body := s.Post(t, "/v1/erasures", "application/json", `{"email":"  Gone.User@Example.com"}`)
	require.Equal(t, http.StatusAccepted, code, "%v", body)
	id, _ := body["erasure_id"].(string)
	require.True(t, strings.HasPrefix(id, "er_"), "%v", body)
	got := waitErasure(t, s, id)
	require.Equal(t, float64(2), got["deliveries"], "%v", got)
	require.Equal(t, float64(2), got["tasks"], "%v", got)
	require.Equal(t, "email", got["identifier"])
	require.Equal(t, "api", got["by"])
	for _, v := range []string{"gone.user@example.com", "cust-gone-1", "198.51.100.23", "EraseAgent/1"} {
		require.False(t, redisHolds(t, s, v), "Redis still holds %s", v)
	}

	code, _ = s.Post(t, "/v1/erasures", "application/json", `{"email":"a@example.com","device_id":"x"}`)
	require.Equal(t, http.StatusBadRequest, code)
}

// waitErasure polls GET /v1/erasures/{id} until the erasure is done.
func waitErasure(t *testing.T, s *stacktest.Stack, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, got := s.Get(t, "/v1/erasures/"+id)
		require.Equal(t, http.StatusOK, code, "%v", got)
		if got["status"] == "done" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("erasure %s not done: %v", id, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisHolds reports whether any value of any key holds s, in any case.
func redisHolds(t *testing.T, s *stacktest.Stack, v string) bool {
	t.Helper()
	ctx := context.Background()
	v = strings.ToLower(v)
	iter := s.Redis.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		var vals []string
		switch s.Redis.Type(ctx, k).Val() {
		case "string":
			vals = []string{s.Redis.Get(ctx, k).Val()}
		case "list":
			vals = s.Redis.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = s.Redis.SMembers(ctx, k).Val()
		case "zset":
			vals = s.Redis.ZRange(ctx, k, 0, -1).Val()
		case "hash":
			for f, x := range s.Redis.HGetAll(ctx, k).Val() {
				vals = append(vals, f, x)
			}
		}
		for _, x := range append(vals, k) {
			if strings.Contains(strings.ToLower(x), v) {
				return true
			}
		}
	}
	require.NoError(t, iter.Err())
	return false
}

// erasureID reads the erasure id of a POST /v1/erasures answer.
func erasureID(t *testing.T, body []byte) string {
	t.Helper()
	var a struct {
		ID string `json:"erasure_id"`
	}
	require.NoError(t, json.Unmarshal(body, &a))
	return a.ID
}
