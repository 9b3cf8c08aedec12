package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
)

// With redis.shards 3, the ops commands read every shard: dlq list and
// stats count every letter, stats prints each shard, and deliveries show
// finds a delivery in any shard.
func TestShards_OpsCommands(t *testing.T) {
	t.Parallel()
	p := stacktest.NewPartner(t)
	p.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) }
	yaml := strings.NewReplacer("PARTNER", p.URL, "PATH", "c").Replace(opsYAML) + "redis:\n  shards: 3\n"
	url := redistest.DB(t)
	s := stacktest.New(t, yaml, stacktest.Options{RedisURL: url})
	b := opsBundle{stack: s, partner: p, ok: &atomic.Bool{}, url: url,
		cfg: partnersFile(t, "postback.yaml", strings.ReplaceAll(yaml, "${api_key}", stacktest.APIKey))}
	ids := b.deadLetters(t, 12)

	r := b.run(t, "dlq", "list", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	require.Len(t, list, 12)

	r = b.run(t, "stats", "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	require.Len(t, lines, 7, r.stdout) // partners' header and line, a blank line, shards' header and 3 lines
	require.Equal(t, []string{"SHARD", "QUEUE", "PENDING", "SCHEDULED", "IN", "FLIGHT", "DLQ"}, strings.Fields(lines[3]))
	dead := 0
	for i, line := range lines[4:] {
		f := strings.Fields(line)
		require.Len(t, f, 6)
		require.Equal(t, []string{"0", "0", "0"}, f[2:5], "shard %d: nothing queued", i)
		n := 0
		_, err := fmt.Sscan(f[5], &n)
		require.NoError(t, err)
		dead += n
	}
	require.Equal(t, 12, dead)
	require.Contains(t, lines[1], " 12 ", "the partner's DLQ sums the shards")

	for _, id := range ids {
		r = b.run(t, "deliveries", "show", id)
		require.Equal(t, 0, r.code, "%s: %s", id, r.stderr)
	}
}

// A reload that changes redis.shards or redis.previous_shards is refused:
// workers' queues and every reader's shards are fixed at start.
func TestRuntime_ReloadRefusesShardsChange(t *testing.T) {
	t.Parallel()
	base := reloadConfig("https://p.example", "")
	path := partnersFile(t, "postback.yaml", base+"redis:\n  shards: 2\n")
	cfg, err := config.Load(path)
	require.NoError(t, err)
	var logs bytes.Buffer
	rt := &runtime{log: slog.New(slog.NewTextHandler(&logs, nil)), live: config.NewLive(cfg), cfgPath: path}
	running := rt.live.Load()
	for _, redis := range []string{"redis:\n  shards: 4\n", "redis:\n  shards: 2\n  previous_shards: 1\n", ""} {
		require.NoError(t, os.WriteFile(path, []byte(base+redis), 0o600))
		require.ErrorContains(t, rt.reload(), "restart the processes", "%q", redis)
		require.Same(t, running, rt.live.Load(), "the running config stays")
	}
	require.NoError(t, os.WriteFile(path, []byte(reloadConfig("https://p.example", reloadPartnerC)+"redis:\n  shards: 2\n"), 0o600))
	require.NoError(t, rt.reload(), "the same shards reload")
	require.Equal(t, []string{"a", "c"}, partnerIDs(rt.live.Load()))
}
