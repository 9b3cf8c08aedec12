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

	"github.com/postbackhq/postback/internal/event"
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
{"id":"e4","name":"Install"}
`), 0o600))
	res := enqueueRun(append(args, "enqueue", "--file", f)...)
	require.Equal(t, 1, res.code, "one event was rejected: %+v", res)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 4)
	require.Equal(t, "0 accepted e1 acme_ads="+wire.DeliveryID("e1", "acme_ads")+" everyone="+wire.DeliveryID("e1", "everyone"), lines[0])
	require.Equal(t, "1 accepted e2 everyone="+wire.DeliveryID("e2", "everyone")+" (skipped: when: condition is false)", lines[1])
	// An invalid IDFA is dropped, not a reason to lose the conversion.
	require.Equal(t, "2 accepted e3 everyone="+wire.DeliveryID("e3", "everyone"), lines[2])
	require.True(t, strings.HasPrefix(lines[3], "3 rejected e4: name: "), lines[3])
	require.Equal(t, "warning: event 2 (e3): device.idfa: not a UUID; dropped\n"+
		"postback: enqueue: 1 of 4 events not accepted (refused, or Redis did not confirm the store: repeat those with the same ids)\n", res.stderr)

	rdb, err := store.OpenRedis(url)
	require.NoError(t, err)
	defer rdb.Close()
	tasks, err := asynq.NewInspectorFromRedisClient(rdb).ListPendingTasks(wire.QueueDefault)
	require.NoError(t, err)
	require.Len(t, tasks, 2, "e1 to both partners, e3 in everyone's bundle; e2 skipped")
	require.Equal(t, int64(1), rdb.Exists(context.Background(), store.EventKey("e2")).Val())

	// Again, as JSON: duplicates now (without warnings), and the rejected
	// one still rejected.
	res = enqueueRun(append(args, "enqueue", "-o", "json", f)...)
	require.Equal(t, 1, res.code)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		var line map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &line), l)
		got = append(got, line["status"].(string))
	}
	require.Equal(t, []string{"duplicate", "duplicate", "duplicate", "rejected"}, got)
	require.NotContains(t, res.stderr, "warning")
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

// TestEnqueueCommand_Normalizes: postback enqueue stores the normalised
// event, names each dropped field on stderr with the event, and follows
// api.strict.
func TestEnqueueCommand_Normalizes(t *testing.T) {
	dir, args, url := enqueueSetup(t)
	f := filepath.Join(dir, "events.ndjson")
	require.NoError(t, os.WriteFile(f, []byte(`{"id":"n1","name":"purchase","click_id":" c ","attribution":{"partner":" acme_ads "},`+
		`"device":{"idfa":"6d92078a-8246-4ba4-ae5b-76104861e7dc","gaid":"38400000-8CF0-11BD-B23E-10B96E40000D","ip":"999.1.1.1","country":"usa"},"user":{"email":" A@Example.com "}}
{"id":"n2","name":"install","device":{"idfv":"x","country":" de "},"user":{"email":"nobody"}}
`), 0o600))
	res := enqueueRun(append(args, "enqueue", f)...)
	require.Equal(t, 0, res.code, "%+v", res)
	require.Equal(t, "0 accepted n1 acme_ads="+wire.DeliveryID("n1", "acme_ads")+" everyone="+wire.DeliveryID("n1", "everyone")+"\n"+
		"1 accepted n2 everyone="+wire.DeliveryID("n2", "everyone")+"\n", res.stdout)
	require.Equal(t, "warning: event 0 (n1): device.ip: not an IPv4 or IPv6 address; dropped\n"+
		"warning: event 0 (n1): device.country: not an ISO 3166-1 alpha-2 code; dropped\n"+
		"warning: event 1 (n2): device.idfv: not a UUID; dropped\n"+
		"warning: event 1 (n2): user.email: not an email address; dropped\n", res.stderr)

	rdb, err := store.OpenRedis(url)
	require.NoError(t, err)
	defer rdb.Close()
	tasks, err := asynq.NewInspectorFromRedisClient(rdb).ListPendingTasks(wire.QueueDefault)
	require.NoError(t, err)
	stored := map[string]event.Device{}
	emails := map[string]string{}
	for _, tk := range tasks {
		pls, err := wire.DecodeBundle(tk.Payload)
		if tk.Type != wire.TypeDeliverBundle {
			var pl *wire.Payload
			pl, err = wire.DecodePayload(tk.Payload)
			pls = []*wire.Payload{pl}
		}
		require.NoError(t, err)
		for _, pl := range pls {
			stored[pl.Delivery], emails[pl.Delivery] = pl.Event.Device, pl.Event.User.Email
			require.NotContains(t, pl.Event.ClickID, " ")
		}
	}
	require.Equal(t, event.Device{IDFA: "6D92078A-8246-4BA4-AE5B-76104861E7DC", GAID: "38400000-8cf0-11bd-b23e-10b96e40000d"},
		stored[wire.DeliveryID("n1", "acme_ads")])
	require.Equal(t, "a@example.com", emails[wire.DeliveryID("n1", "acme_ads")])
	require.Equal(t, event.Device{Country: "DE"}, stored[wire.DeliveryID("n2", "everyone")])
	require.Empty(t, emails[wire.DeliveryID("n2", "everyone")])

	// With api.strict, the same events are refused, naming the field.
	strict := filepath.Join(dir, "strict.yaml")
	require.NoError(t, os.WriteFile(strict, []byte(strings.Replace(enqueueYAML, "api:\n", "api:\n  strict: true\n", 1)), 0o600))
	f2 := filepath.Join(dir, "strict.ndjson")
	data, err := os.ReadFile(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f2, []byte(strings.NewReplacer(`"n1"`, `"s1"`, `"n2"`, `"s2"`).Replace(string(data))), 0o600))
	res = enqueueRun("postback", "--log-level", "error", "-c", strict, "--redis-url", url, "enqueue", f2)
	require.Equal(t, 1, res.code, "%+v", res)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, `0 rejected s1: device.ip: "999.1.1.1" is not an IPv4 or IPv6 address`, lines[0])
	require.Equal(t, `1 rejected s2: device.idfv: "x" is not a UUID like 6D92078A-8246-4BA4-AE5B-76104861E7DC`, lines[1])
	require.NotContains(t, res.stderr, "warning")
}
