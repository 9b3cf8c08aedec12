package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPartnersPause_ListStatsResume(t *testing.T) {
	t.Parallel()
	b := setupOps(t)

	// The flag may follow the partner id.
	r := b.run(t, "partners", "pause", "p1", "--reason", "partner maintenance")
	require.Equal(t, 0, r.code, r.stderr)
	require.True(t, strings.HasPrefix(r.stdout, "partner p1 paused since "), r.stdout)

	r = b.run(t, "partners", "list", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var rows []struct {
		ID     string `json:"id"`
		Paused *struct {
			Since  string `json:"since"`
			Reason string `json:"reason"`
			By     string `json:"by"`
		} `json:"paused"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	require.Len(t, rows, 1)
	require.NotNil(t, rows[0].Paused)
	require.Equal(t, "partner maintenance", rows[0].Paused.Reason)
	require.Equal(t, "cli", rows[0].Paused.By)
	require.NotEmpty(t, rows[0].Paused.Since)

	r = b.run(t, "partners", "list", "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "PAUSED")
	require.Contains(t, r.stdout, "since "+rows[0].Paused.Since+" (partner maintenance)")

	r = b.run(t, "stats", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var st struct {
		Partners []struct {
			Partner string          `json:"partner"`
			Paused  json.RawMessage `json:"paused"`
		} `json:"partners"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	require.Contains(t, string(st.Partners[0].Paused), `"reason": "partner maintenance"`)
	r = b.run(t, "stats", "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "(partner maintenance)")

	r = b.run(t, "partners", "resume", "p1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "partner p1 resumed\n", r.stdout)
	r = b.run(t, "partners", "resume", "p1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "partner p1 was not paused\n", r.stdout)

	r = b.run(t, "partners", "list", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	require.Nil(t, rows[0].Paused)
}

func TestPartnersPause_Refusals(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	r := b.run(t, "partners", "pause", "nope")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `partner "nope" is not in`)
	r = b.run(t, "partners", "resume")
	require.Equal(t, 2, r.code)
	requireOneLine(t, r, "postback: partners resume takes one partner id")
}
