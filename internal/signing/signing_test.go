package signing_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/signing"
)

// Two keys in the Standard Webhooks form, as a partner rotating its secret
// would configure them: the old one first, the new one second.
var (
	oldSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("old-key-0123456789abcdef01234567"))
	newSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("new-key-0123456789abcdef01234567"))
)

func TestSigner_Header(t *testing.T) {
	t.Parallel()

	signer, err := signing.NewSigner([]string{oldSecret, newSecret})
	require.NoError(t, err)

	body := []byte(`{"click":"abc","amount":1.99}`)
	ts := time.Now()
	h := http.Header{}
	signer.Header(h, "dlv_0123", ts, body)

	require.Equal(t, "dlv_0123", h.Get(signing.HeaderID))
	require.Equal(t, strconv.FormatInt(ts.Unix(), 10), h.Get(signing.HeaderTimestamp))
	sigs := strings.Split(h.Get(signing.HeaderSignature), " ")
	require.Len(t, sigs, 2, "one signature per secret")
	for _, sig := range sigs {
		require.True(t, strings.HasPrefix(sig, "v1,"), sig)
	}

	// Each secret alone verifies with the reference library: the partner can
	// be on either side of the rotation.
	for _, secret := range []string{oldSecret, newSecret} {
		wh, err := standardwebhooks.NewWebhook(secret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(body, h))
	}

	// A different body, id or key does not verify.
	wh, err := standardwebhooks.NewWebhook(oldSecret)
	require.NoError(t, err)
	require.ErrorIs(t, wh.Verify([]byte(`{"click":"abd","amount":1.99}`), h), standardwebhooks.ErrNoMatchingSignature)
	other := h.Clone()
	other.Set(signing.HeaderID, "dlv_0124")
	require.ErrorIs(t, wh.Verify(body, other), standardwebhooks.ErrNoMatchingSignature)
	stranger, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("someone-else")))
	require.NoError(t, err)
	require.ErrorIs(t, stranger.Verify(body, h), standardwebhooks.ErrNoMatchingSignature)
}

func TestSigner_Header_rawSecret(t *testing.T) {
	t.Parallel()

	// A secret without the whsec_ prefix is the HMAC key byte for byte.
	signer, err := signing.NewSigner([]string{"plain shared secret"})
	require.NoError(t, err)

	body := []byte("click_id=abc")
	h := http.Header{}
	signer.Header(h, "dlv_raw", time.Now(), body)

	wh, err := standardwebhooks.NewWebhookRaw([]byte("plain shared secret"))
	require.NoError(t, err)
	require.NoError(t, wh.Verify(body, h))
}

func TestSigner_Signature(t *testing.T) {
	t.Parallel()

	signer, err := signing.NewSigner([]string{newSecret})
	require.NoError(t, err)
	ts := time.Unix(1764095481, 999_000_000) // sub-second part is dropped
	body := []byte(`{}`)

	wh, err := standardwebhooks.NewWebhook(newSecret)
	require.NoError(t, err)
	want, err := wh.Sign("dlv_1", ts, body)
	require.NoError(t, err)
	require.Equal(t, want, signer.Signature("dlv_1", ts, body))
}

func TestNewSigner(t *testing.T) {
	t.Parallel()

	const secretValue = "whsec_not!base64"
	tests := []struct {
		name      string
		secrets   []string
		wantIndex int // -1: ErrNoSecrets
	}{
		{name: "none", secrets: nil, wantIndex: -1},
		{name: "bad base64 second", secrets: []string{oldSecret, secretValue}, wantIndex: 1},
		{name: "bad base64 first", secrets: []string{secretValue, oldSecret}, wantIndex: 0},
		{name: "empty", secrets: []string{oldSecret, newSecret, ""}, wantIndex: 2},
		{name: "empty after prefix", secrets: []string{"whsec_"}, wantIndex: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			signer, err := signing.NewSigner(tt.secrets)
			require.Nil(t, signer)
			if tt.wantIndex < 0 {
				require.ErrorIs(t, err, signing.ErrNoSecrets)
				return
			}
			var secretErr *signing.SecretError
			require.ErrorAs(t, err, &secretErr)
			require.Equal(t, tt.wantIndex, secretErr.Index)
			require.Contains(t, err.Error(), "secret "+strconv.Itoa(tt.wantIndex))
			require.NotContains(t, err.Error(), "not!base64", "an error must never show the secret")
		})
	}
}
