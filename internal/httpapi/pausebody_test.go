package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/stacktest"
)

// A pause's body is at most 4 KiB on both servers, whether its length is
// announced or it comes chunked; a small chunked body is read whole.
func TestPause_BodyLimit(t *testing.T) {
	t.Parallel()
	onBoth(t, func(t *testing.T, netHTTP bool) {
		b := setupOn(t, netHTTP)
		s := b.stack
		big := fmt.Sprintf(`{"reason":%q}`, strings.Repeat("r", 5000))
		reason := func() string {
			paused, err := s.Store.Paused(context.Background())
			require.NoError(t, err)
			return paused["acme_ads"].Reason
		}

		resp, body := rawExchange(t, s, "POST /v1/partners/acme_ads/pause HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+stacktest.APIKey+
			"\r\nContent-Type: application/json\r\nContent-Length: "+fmt.Sprint(len(big))+"\r\n\r\n"+big)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
		require.Equal(t, "body_too_large", body["error"].(map[string]any)["code"])
		require.Empty(t, reason(), "nothing paused")

		resp, body = rawExchange(t, s, "POST /v1/partners/acme_ads/pause HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+stacktest.APIKey+
			"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+chunked(big))
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
		require.Empty(t, reason(), "nothing paused")

		resp, body = rawExchange(t, s, "POST /v1/partners/acme_ads/pause HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+stacktest.APIKey+
			"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+chunked(`{"reason":"chunked maintenance"}`))
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Equal(t, "chunked maintenance", reason())
	})
}

// chunked encodes s as a chunked body of 1000-byte chunks.
func chunked(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := min(1000, len(s))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, s[:n])
		s = s[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}
