package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
)

const enqueueYAML = `
api:
  keys: ["enqueue-test-key-0123456789"]
partners:
  - id: acme_ads
    url: "https://acme.example/c?c={click_id}"
  - id: everyone
    match: all
    when: 'event != "sign_up"'
    url: "https://all.example/e?e={event}"
`

// enqueueSetup writes the config and returns the args that point the CLI
// at it and at a fresh Redis database.
func enqueueSetup(t *testing.T) (dir string, args []string, url string) {
	t.Helper()
	dir = t.TempDir()
	cfg := filepath.Join(dir, "postback.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(enqueueYAML), 0o600))
	url = redistest.DB(t)
	return dir, []string{"postback", "--log-level", "error", "-c", cfg, "--redis-url", url}, url
}

func enqueueRun(args ...string) cliResult {
	var out, errOut strings.Builder
	code := runSerial(args, &out, &errOut)
	return cliResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

func TestEnqueueCommand_NDJSONFile(t *testing.T) {
	dir, args, url := enqueueSetup(t)
	f := filepath.Join(dir, "events.ndjson")
	require.NoError(t, os.WriteFile(f, []byte(`{"id":"e1","name":"purchase","click_id":"c","attribution":{"partner":"acme_ads"}}

{"id":"e2","name":"sign_up"}
{"id":"e3","name":"install","device":{"idfa":"nope"}}
`), 0o600))
	res := enqueueRun(append(args, "enqueue", "--file", f)...)
	require.Equal(t, 1, res.code, "one event was rejected: %+v", res)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, "0 accepted e1 acme_ads="+wire.DeliveryID("e1", "acme_ads")+" everyone="+wire.DeliveryID("e1", "everyone"), lines[0])
	require.Equal(t, "1 accepted e2 everyone="+wire.DeliveryID("e2", "everyone")+" (skipped: when: condition is false)", lines[1])
	require.True(t, strings.HasPrefix(lines[2], "2 rejected e3: device.idfa: "), lines[2])
	require.Contains(t, res.stderr, "1 of 3 events not accepted")

	rdb, err := store.OpenRedis(url)
	require.NoError(t, err)
	defer rdb.Close()
	tasks, err := asynq.NewInspectorFromRedisClient(rdb).ListPendingTasks(wire.QueueDefault)
	require.NoError(t, err)
	require.Len(t, tasks, 2, "e1 to both partners; e2 skipped")
	require.Equal(t, int64(1), rdb.Exists(context.Background(), store.EventKey("e2")).Val())

	// Again, as JSON: duplicates now, and the rejected one still rejected.
	res = enqueueRun(append(args, "enqueue", "-o", "json", f)...)
	require.Equal(t, 1, res.code)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		var line map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &line), l)
		got = append(got, line["status"].(string))
	}
	require.Equal(t, []string{"duplicate", "duplicate", "rejected"}, got)
}

func TestEnqueueCommand_OneEventFromStdin(t *testing.T) {
	_, args, _ := enqueueSetup(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	_, err = w.WriteString("{\n  \"id\": \"s1\",\n  \"name\": \"install\"\n}\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	stdin := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = stdin; r.Close() }()
	res := enqueueRun(append(args, "enqueue", "-")...)
	require.Equal(t, 0, res.code, "%+v", res)
	require.Equal(t, "0 accepted s1 everyone="+wire.DeliveryID("s1", "everyone")+"\n", res.stdout)
}

func TestEnqueueCommand_Usage(t *testing.T) {
	_, args, _ := enqueueSetup(t)
	res := enqueueRun(append(args, "enqueue", "--file", "a", "b")...)
	require.Equal(t, 2, res.code)
	res = enqueueRun(append(args, "enqueue", "--file", filepath.Join(t.TempDir(), "missing.ndjson"))...)
	require.Equal(t, 1, res.code)
	require.Contains(t, res.stderr, "missing.ndjson")
}
