package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

func TestErase_DryRunThenErase(t *testing.T) {
	t.Parallel()
	b := setupOps(t) // p1 answers 400: a dead letter
	ev := &event.Event{ID: "evt-erase-1", Name: "install"}
	ev.User.CustomerUserID, ev.User.Email, ev.Device.GAID = "cust-cli-77", "cli.user@example.com", "6d92078a-8246-4ba4-ae5b-76104861e7dc"
	_, err := b.stack.Client.Enqueue(context.Background(), ev)
	require.NoError(t, err)
	id := wire.DeliveryID(ev.ID, "p1")
	b.stack.WaitStatus(t, id, retry.StatusDead, 10*time.Second)

	r := b.run(t, "erase", "--device-id", "6D92078A-8246-4BA4-AE5B-76104861E7DC")
	require.Equal(t, 2, r.code)
	requireOneLine(t, r, "postback: erase removes the user's data for good: add --yes to confirm, or --dry-run to count first")
	r = b.run(t, "erase", "--email", "a@example.com", "--device-id", "x", "--yes")
	require.Equal(t, 2, r.code)

	r = b.run(t, "erase", "--device-id", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "--dry-run", "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "dry run: 1 deliveries of this user (1 dead letters, 0 pending tasks)")
	dl, err := b.stack.Store.GetDeadLetter(context.Background(), id)
	require.NoError(t, err)
	pl, err := wire.DecodePayload(dl.Payload)
	require.NoError(t, err)
	require.Equal(t, "cust-cli-77", pl.Event.User.CustomerUserID, "a dry run changes nothing")

	r = b.run(t, "erase", "--device-id", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "--yes", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Equal(t, "done", got["status"])
	require.Equal(t, "device_id", got["identifier"])
	require.Equal(t, float64(1), got["dead_letters"])
	require.Equal(t, "cli", got["by"])
	dl, err = b.stack.Store.GetDeadLetter(context.Background(), id)
	require.NoError(t, err)
	pl, err = wire.DecodePayload(dl.Payload)
	require.NoError(t, err)
	require.Empty(t, pl.Event.User.CustomerUserID)
	require.Empty(t, pl.Event.User.Email)
	require.Empty(t, pl.Event.Device.GAID)
	require.Equal(t, "install", pl.Event.Name)
}
