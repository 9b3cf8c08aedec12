package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

const twoPartnersYAML = `
api:
  keys: ["${api_key}"]
  max_body_bytes: 65536
delivery:
  allow_private_networks: true
partners:
  - id: acme_ads
    url: "ACME/c?click_id={click_id}&dlv={delivery_id}"
  - id: everyone
    match: all
    url: "ALL/e?id={event_id}"
`

func setupTwo(t *testing.T, o stacktest.Options) (*stacktest.Stack, *stacktest.Partner, *stacktest.Partner) {
	t.Helper()
	acme, all := stacktest.NewPartner(t), stacktest.NewPartner(t)
	yaml := strings.NewReplacer("ACME", acme.URL, "ALL", all.URL).Replace(twoPartnersYAML)
	return stacktest.New(t, yaml, o), acme, all
}

func TestPostEvent_FiftyConcurrentPostsDeliverOncePerPartner(t *testing.T) {
	t.Parallel()
	s, acme, all := setupTwo(t, stacktest.Options{})
	const n = 50
	ev := `{"id":"evt-50","name":"purchase","click_id":"c1","attribution":{"partner":"acme_ads"}}`
	statuses := make([]int, n)
	bodies := make([]map[string]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i], bodies[i] = s.Post(t, "/v1/events", "application/json", ev) })
	}
	wg.Wait()
	accepted := 0
	for i := range n {
		switch statuses[i] {
		case http.StatusAccepted:
			accepted++
		case http.StatusOK:
			require.Equal(t, true, bodies[i]["duplicate"])
		default:
			t.Fatalf("post %d: %d %v", i, statuses[i], bodies[i])
		}
		require.Equal(t, bodies[0]["deliveries"], bodies[i]["deliveries"])
	}
	require.Equal(t, 1, accepted)
	for _, d := range bodies[0]["deliveries"].([]any) {
		s.WaitStatus(t, d.(map[string]any)["id"].(string), retry.StatusDelivered, 10*time.Second)
	}
	// A repeat that checked for a record just before the first task was
	// recorded may enqueue the task again once the first is done; that task
	// finds the delivery final and sends nothing. Once every task has run,
	// what the partners have is all they will ever get.
	s.WaitQueuesEmpty(t, 10*time.Second)
	require.Len(t, acme.Requests(), 1)
	require.Len(t, all.Requests(), 1)
}

func TestPostBatch_FormsAndResults(t *testing.T) {
	t.Parallel()
	s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true})
	status, body := s.Post(t, "/v1/events", "application/json", `{"id":"old","name":"install"}`)
	require.Equal(t, http.StatusAccepted, status, body)

	mixed := []string{
		`{"id":"b-1","name":"install","attribution":{"partner":"acme_ads"}}`,
		`{"id":"b-2","name":"install","device":{"idfaa":"x"}}`,
		`{"id":"old","name":"install"}`,
		`{"id":"b-3","name":"purchase","revenue":{"amount":"2.50","currency":"EUR"}}`,
	}
	check := func(t *testing.T, status int, body map[string]any) {
		t.Helper()
		require.Equal(t, http.StatusOK, status, body)
		results := body["results"].([]any)
		require.Len(t, results, 4)
		r := func(i int) map[string]any { return results[i].(map[string]any) }
		for i := range 4 {
			require.EqualValues(t, i, r(i)["index"])
		}
		require.Equal(t, "accepted", r(0)["status"])
		require.Equal(t, "b-1", r(0)["event_id"])
		require.Len(t, r(0)["deliveries"], 2)
		require.Equal(t, "rejected", r(1)["status"])
		require.Equal(t, "b-2", r(1)["event_id"])
		e := r(1)["error"].(map[string]any)
		require.Equal(t, "invalid_event", e["code"])
		require.Equal(t, "device.idfaa", e["field"])
		require.Equal(t, "duplicate", r(2)["status"])
		require.Len(t, r(2)["deliveries"], 1)
		require.Equal(t, "accepted", r(3)["status"])
	}
	t.Run("object", func(t *testing.T) {
		st, b := s.Post(t, "/v1/events/batch", "application/json", `{"events":[`+strings.Join(mixed, ",")+`]}`)
		check(t, st, b)
	})
	// The same events again, in the two other forms: all but the invalid
	// one are now duplicates.
	again := func(t *testing.T, st int, b map[string]any) {
		t.Helper()
		require.Equal(t, http.StatusOK, st, b)
		var got []string
		for _, r := range b["results"].([]any) {
			got = append(got, r.(map[string]any)["status"].(string))
		}
		require.Equal(t, []string{"duplicate", "rejected", "duplicate", "duplicate"}, got)
	}
	t.Run("array", func(t *testing.T) {
		st, b := s.Post(t, "/v1/events/batch", "application/json", `[`+strings.Join(mixed, ",")+`]`)
		again(t, st, b)
	})
	t.Run("ndjson", func(t *testing.T) {
		st, b := s.Post(t, "/v1/events/batch", "application/x-ndjson", strings.Join(mixed, "\n")+"\n\n")
		again(t, st, b)
	})
}

func TestPostBatch_Limits(t *testing.T) {
	t.Parallel()
	onBoth(t, testPostBatchLimits)
}

func testPostBatchLimits(t *testing.T, netHTTP bool) {
	s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true, NetHTTP: netHTTP})
	var tooMany strings.Builder
	for i := range intake.MaxBatch + 1 {
		fmt.Fprintf(&tooMany, "{\"id\":\"%d\"}\n", i)
	}
	cases := []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"too many events", "application/x-ndjson", tooMany.String(), 400, "batch_too_large"},
		{"body too large", "application/json", `{"events":[` + strings.Repeat(`{"id":"x","name":"install"},`, 3000) + `{}]}`, 413, "body_too_large"},
		{"content type", "text/csv", "id,name\n", 415, "unsupported_media_type"},
		{"empty", "application/json", `{"events":[]}`, 400, "invalid_batch"},
		{"not a batch", "application/json", `{"evnts":[]}`, 400, "invalid_batch"},
		{"malformed", "application/json", `[{"id":`, 400, "invalid_batch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.Post(t, "/v1/events/batch", tc.ct, tc.body)
			require.Equal(t, tc.status, status, body)
			require.Equal(t, tc.code, body["error"].(map[string]any)["code"])
		})
	}
	status, body := s.Post(t, "/v1/events", "application/json", `{"id":"big","name":"install","params":{"p":"`+strings.Repeat("x", 70000)+`"}}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, status, body)
}

func TestServer_HealthReadyMetrics(t *testing.T) {
	t.Parallel()
	s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true})
	status, body := s.Post(t, "/v1/events", "application/json", `{"id":"m-1","name":"install"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	status, _ = s.Post(t, "/v1/events", "application/json", `{"id":"m-1","name":"install"}`)
	require.Equal(t, http.StatusOK, status)
	status, _ = s.Post(t, "/v1/events", "application/json", `{"name":"install"}`)
	require.Equal(t, http.StatusBadRequest, status)

	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`} {
		resp, err := http.Get(s.API.URL + path) // no key needed
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, string(b), want)
	}
	resp, err := http.Get(s.API.URL + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, result := range []string{"accepted", "duplicate", "rejected"} {
		require.Contains(t, string(b), `postback_events_received_total{result="`+result+`"}`)
	}
}

// TestPostEvent_RedisKilledMidStream posts events from several goroutines
// while the redis-server is killed, then restarts it from its append-only
// file: every event answered 202 (or 200) is there, with its task, and
// every refusal was a 503 with Retry-After.
func TestPostEvent_RedisKilledMidStream(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	dir := t.TempDir()
	aof := redistest.Options{Dir: dir, Args: []string{"--appendonly", "yes", "--appendfsync", "always"}}
	srv := redistest.Own(t, aof)
	s, _, _ := setupTwo(t, stacktest.Options{RedisURL: srv.URL(0), NoWorker: true})

	var mu sync.Mutex
	stored := map[string]bool{}
	refused := 0
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("k-%d-%d", g, i)
				req, _ := http.NewRequest(http.MethodPost, s.API.URL+"/v1/events", strings.NewReader(`{"id":"`+id+`","name":"install"}`))
				req.Header.Set("Authorization", "Bearer "+stacktest.APIKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				switch resp.StatusCode {
				case http.StatusAccepted, http.StatusOK:
					stored[id] = true
				case http.StatusServiceUnavailable:
					if resp.Header.Get("Retry-After") == "" {
						t.Errorf("%s: 503 without Retry-After", id)
					}
					refused++
				default:
					t.Errorf("%s: status %d", id, resp.StatusCode)
				}
				done := refused >= 8
				mu.Unlock()
				select {
				case <-killed:
					if done {
						return
					}
				default:
				}
			}
		})
	}
	// Let some events in, then kill Redis under the running posts.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(stored)
		mu.Unlock()
		if n >= 40 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, srv.Signal(syscall.SIGKILL))
	close(killed)
	wg.Wait()
	require.NotEmpty(t, stored)
	require.GreaterOrEqual(t, refused, 8)

	status, _ := s.Get(t, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, status)

	// The same server, from its append-only file.
	port := srv.Addr()[strings.LastIndexByte(srv.Addr(), ':')+1:]
	var p int
	_, err := fmt.Sscan(port, &p)
	require.NoError(t, err)
	aof.Port = p
	again := redistest.Own(t, aof)
	ctx := context.Background()
	rdb, err := store.OpenRedis(again.URL(0))
	require.NoError(t, err)
	defer rdb.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	// Concurrent posts share bundle tasks: read every task's deliveries.
	tasks, err := insp.ListPendingTasks(wire.QueueDefault, asynq.PageSize(100_000))
	require.NoError(t, err)
	queued := map[string]bool{}
	for _, task := range tasks {
		ids, err := wire.TaskDeliveries(task.Type, task.Payload)
		require.NoError(t, err)
		for _, id := range ids {
			queued[id] = true
		}
	}
	for id := range stored {
		n, err := rdb.Exists(ctx, store.EventKey(id)).Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "event %s was answered as stored: its claim is kept", id)
		require.True(t, queued[wire.DeliveryID(id, "everyone")], "event %s: its delivery task is queued", id)
	}
}

// TestAPI_waitReplicasWithoutReplica: with api.wait_replicas and no
// replica, /readyz says why every event would be answered 503, and an
// event is answered 503 with Retry-After though the master stored it; the
// same event once the setting is lifted is its duplicate.
func TestAPI_waitReplicasWithoutReplica(t *testing.T) {
	t.Parallel()
	const yaml = `
api:
  keys: ["${api_key}"]
  wait_replicas: 1
  wait_timeout: 50ms
partners:
  - id: everyone
    url: "https://x.example/pb?e={event_id}"
`
	s := stacktest.New(t, yaml, stacktest.Options{NoWorker: true})
	status, body := s.Get(t, "/readyz")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Contains(t, fmt.Sprint(body), "api.wait_replicas is 1 but the Redis master has 0 connected replica(s)")

	status, body = s.Post(t, "/v1/events", "application/json", `{"id":"w-1","name":"install"}`)
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, fmt.Sprint(body), "on the Redis master but not yet on the replicas api.wait_replicas asks for")
	status, body = s.Post(t, "/v1/events/batch", "application/json", `[{"id":"w-2","name":"install"}]`)
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, fmt.Sprint(body), "not yet on the replicas")

	s.Live.Store(s.Parse(t, strings.Replace(yaml, "wait_replicas: 1", "wait_replicas: 0", 1)))
	status, body = s.Post(t, "/v1/events", "application/json", `{"id":"w-1","name":"install"}`)
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, true, body["duplicate"])
	status, _ = s.Get(t, "/readyz")
	require.Equal(t, http.StatusOK, status)
}

// TestPostEvent_repeatOfANewerPostbacksEvent: during an upgrade, a repeat
// whose claim a newer postback wrote, in a form this one cannot read, is
// answered 503 saying so (not "Redis is unavailable"), single or in a
// batch; the client's retry reaches an upgraded API.
func TestPostEvent_repeatOfANewerPostbacksEvent(t *testing.T) {
	t.Parallel()
	s, _, _ := setupTwo(t, stacktest.Options{NoWorker: true})
	require.NoError(t, s.Redis.Set(context.Background(), store.EventKey("from-the-future"), "\x09acme_ads", time.Hour).Err())
	status, body := s.Post(t, "/v1/events", "application/json", `{"id":"from-the-future","name":"install"}`)
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, body["error"].(map[string]any)["message"], "newer postback")
	status, body = s.Post(t, "/v1/events/batch", "application/json", `[{"id":"from-the-future","name":"install"},{"id":"today","name":"install"}]`)
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, body["error"].(map[string]any)["message"], "newer postback")
}
