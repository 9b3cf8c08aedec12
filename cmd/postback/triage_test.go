package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/retry"
)

// dlq triage prints the groups as a table or JSON, and dlq retry --group
// replays one.
func TestDLQTriage_TableJSONAndRetryGroup(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	ids := b.deadLetters(t, 3)

	r := b.run(t, "dlq", "triage", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var groups []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &groups))
	require.Len(t, groups, 1)
	g := groups[0]
	require.Equal(t, "p1", g["partner"])
	require.Equal(t, "rejected", g["reason"])
	require.EqualValues(t, 400, g["status"])
	require.EqualValues(t, 3, g["count"])
	require.Equal(t, "HTTP <n>", g["fingerprint"])
	require.Contains(t, ids, g["sample_id"])
	require.Contains(t, g["sample_url"], "/c?e=***")
	require.Equal(t, map[string]any{}, g["revenue_at_risk"])
	for _, k := range []string{"id", "first_dead_at", "last_dead_at", "sample_error"} {
		require.NotEmpty(t, g[k], k)
	}

	r = b.run(t, "dlq", "triage", "-o", "table", "-p", "p1")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Regexp(t, `^GROUP\s+PARTNER\s+REASON\s+STATUS\s+COUNT\s+FIRST\s+LAST\s+REVENUE AT RISK\s+FINGERPRINT$`, lines[0])
	require.Regexp(t, `^`+g["id"].(string)+`\s+p1\s+rejected\s+400\s+3\s+\S+Z\s+\S+Z\s+-\s+HTTP <n>$`, lines[1])

	r = b.run(t, "dlq", "retry", "--group", "gffffffffff", "-o", "json")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no dead letters in this group")
	r = b.run(t, "dlq", "retry", "--group", g["id"].(string), "--all")
	require.Equal(t, 2, r.code, "one selection at a time")

	b.ok.Store(true)
	r = b.run(t, "dlq", "retry", "--group", g["id"].(string), "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var out struct {
		Result struct {
			Enqueued int `json:"enqueued"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Equal(t, 3, out.Result.Enqueued)
	for _, id := range ids {
		b.stack.WaitStatus(t, id, retry.StatusDelivered, 20*time.Second)
	}
	r = b.run(t, "dlq", "triage", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "[]\n", r.stdout)
}
