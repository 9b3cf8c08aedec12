package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/httpapi"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
)

func TestNew_RefusesToStartWithoutKeys(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("postback.yaml", []byte("partners:\n  - id: a\n    match: all\n    url: \"https://a.example/\"\n"),
		func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	defer rdb.Close()
	live := config.NewLive(cfg)
	client, err := intake.NewClient(intake.ClientConfig{Redis: rdb, Config: live})
	require.NoError(t, err)
	defer client.Close()

	_, err = httpapi.New(httpapi.Config{Client: client, Config: live, Redis: rdb})
	require.ErrorIs(t, err, httpapi.ErrNoKeys)

	// --insecure-no-auth: served without a key.
	api, err := httpapi.New(httpapi.Config{Client: client, Config: live, Redis: rdb, InsecureNoAuth: true})
	require.NoError(t, err)
	srv := httptest.NewServer(api)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/events", "application/json", strings.NewReader(`{"id":"open-1","name":"install"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}
