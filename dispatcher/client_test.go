package dispatcher_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/dispatcher"
	"github.com/postbackhq/postback/internal/redistest"
)

const secretYAML = `
api:
  keys: ["${env:PB_TEST_UNSET_KEY}"]
partners:
  - id: acme_ads
    match: all
    url: "https://pb.acme.example/c?t=${env:PB_TEST_UNSET_TOKEN}&c={click_id}"
    signing: {scheme: standard-webhooks, secrets: ["${env:PB_TEST_UNSET_SECRET}"]}
`

// A producer loads postback.yaml from its file with none of the partners'
// secrets set, routes by it, and a reload puts a new file in force while
// a file that does not load is refused and the old one stays.
func TestClient_ConfigFileAndReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "postback.yaml")
	require.NoError(t, os.WriteFile(path, []byte(secretYAML), 0o600))
	rdb, err := dispatcher.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := dispatcher.NewClient(dispatcher.ClientConfig{Redis: rdb, ConfigFile: path})
	require.NoError(t, err, "the partners' secrets are not needed to enqueue")
	t.Cleanup(func() { _ = c.Close() })

	ctx := context.Background()
	rc, err := c.Enqueue(ctx, &dispatcher.Event{ID: "r-1", Name: "install"})
	require.NoError(t, err)
	require.Len(t, rc.Deliveries, 1)

	require.NoError(t, os.WriteFile(path, []byte(secretYAML+`  - id: second
    match: all
    url: "https://second.example/c"
`), 0o600))
	require.NoError(t, c.Reload())
	rc, err = c.Enqueue(ctx, &dispatcher.Event{ID: "r-2", Name: "install"})
	require.NoError(t, err)
	require.Len(t, rc.Deliveries, 2, "the reloaded config routes to the new partner")

	require.NoError(t, os.WriteFile(path, []byte("partners: [{id: BAD}]\n"), 0o600))
	require.Error(t, c.Reload())
	rc, err = c.Enqueue(ctx, &dispatcher.Event{ID: "r-3", Name: "install"})
	require.NoError(t, err)
	require.Len(t, rc.Deliveries, 2, "a config that does not load leaves the one in force")
}
