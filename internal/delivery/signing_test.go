package delivery_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/version"
	"github.com/postbackhq/postback/retry"
)

// TestWorker_SignedRequestsVerify sends a signed POST through the worker to
// a partner that fails the first attempt. Each request verifies with the
// Standard Webhooks reference library under either secret of a rotation,
// and the retry keeps webhook-id (= delivery id = Idempotency-Key).
func TestWorker_SignedRequestsVerify(t *testing.T) {
	t.Parallel()
	oldSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("old-partner-key-0123456789abcdef"))
	newSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("new-partner-key-0123456789abcdef"))
	p := stacktest.NewPartner(t)
	p.Respond = func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	b := setupWorkerEnv(t, fmt.Sprintf(`
api: {keys: ["${api_key}"]}
delivery: {allow_private_networks: true}
partners:
  - id: signed
    method: POST
    url: "%s/hook"
    body: '{"click":"{click_id}","event":"{event}","attempt":"{attempt}"}'
    content_type: application/json
    signing: {scheme: standard-webhooks, secrets: ["${env:OLD}", "${env:NEW}"]}
    retry: {initial_interval: 100ms, max_interval: 200ms}
`, p.URL), map[string]string{"OLD": oldSecret, "NEW": newSecret}, delivery.WorkerConfig{})

	id := b.enqueue(t, "evt-signed-1", "signed")
	rec := b.stack.WaitStatus(t, id, retry.StatusDelivered, 15*time.Second)
	require.Equal(t, 2, rec.Attempts)
	got := p.Requests()
	require.Len(t, got, 2)
	require.JSONEq(t, `{"click":"clk-evt-signed-1","event":"purchase","attempt":"1"}`, got[0].Body)
	require.JSONEq(t, `{"click":"clk-evt-signed-1","event":"purchase","attempt":"2"}`, got[1].Body)

	var lastTS int64
	for i, r := range got {
		require.Equal(t, http.MethodPost, r.Method)
		require.Equal(t, id, r.Header.Get("webhook-id"), "request %d: stable across retries", i+1)
		require.Equal(t, id, r.Header.Get("Idempotency-Key"), "request %d", i+1)
		require.Equal(t, "postback/"+version.Version, r.Header.Get("User-Agent"))
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		sigs := strings.Fields(r.Header.Get("webhook-signature"))
		require.Len(t, sigs, 2, "one signature per secret")
		ts, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
		require.NoError(t, err)
		require.GreaterOrEqual(t, ts, lastTS, "stamped per attempt")
		lastTS = ts
		// The partner may hold either secret of the rotation.
		for _, secret := range []string{oldSecret, newSecret} {
			wh, err := standardwebhooks.NewWebhook(secret)
			require.NoError(t, err)
			require.NoError(t, wh.Verify([]byte(r.Body), r.Header), "request %d", i+1)
		}
		stranger, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("not-the-partner-key-0123456789ab")))
		require.NoError(t, err)
		require.ErrorIs(t, stranger.Verify([]byte(r.Body), r.Header), standardwebhooks.ErrNoMatchingSignature)
	}
}
