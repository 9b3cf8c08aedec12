package triage_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/triage"
)

func TestMask(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"HTTP 400", "HTTP <n>"},
		{"timeout", "timeout"},
		{"dial tcp 203.0.113.7:443: connect: connection refused", "dial tcp <host>: connect: connection refused"},
		{"dial tcp: lookup pb.acme.example: no such host", "dial tcp: lookup <host>: no such host"},
		{"dial tcp [2001:db8::1]:443: i/o timeout", "dial tcp <host>: i/o timeout"},
		{"HTTP 302 redirect to https://x.example/l/clk-123?c=abc&d=1 (not followed)",
			"HTTP <n> redirect to https://<host>/l/<id>?c=<v>&d=<v> (not followed)"},
		{"click 5f0e4a2c-1b7d-4c3e-9a8b-0c1d2e3f4a5b unknown", "click <id> unknown"},
		{"delivery dlv_0123456789abcdef0123456789abcdef failed after 3 tries", "delivery <id> failed after <n> tries"},
		{"amount 12.50 over limit", "amount <n> over limit"},
	} {
		require.Equal(t, c.want, triage.Mask(c.in), c.in)
	}
}

func TestFingerprint_ID(t *testing.T) {
	t.Parallel()
	a := triage.Of("acme", "rejected", 302, "HTTP 302 redirect to https://a.example/x?c=1 (not followed)")
	b := triage.Of("acme", "rejected", 302, "HTTP 302 redirect to https://b.example/x?c=22 (not followed)")
	require.Equal(t, a.ID(), b.ID(), "one failure, two letters")
	require.Regexp(t, `^g[0-9a-f]{10}$`, a.ID())
	for _, other := range []triage.Fingerprint{
		triage.Of("beta", "rejected", 302, "HTTP 302 redirect to https://a.example/x?c=1 (not followed)"),
		triage.Of("acme", "exhausted", 302, "HTTP 302 redirect to https://a.example/x?c=1 (not followed)"),
		triage.Of("acme", "rejected", 301, "HTTP 302 redirect to https://a.example/x?c=1 (not followed)"),
		triage.Of("acme", "rejected", 302, "HTTP 302 redirect to https://a.example/y?c=1 (not followed)"),
	} {
		require.NotEqual(t, a.ID(), other.ID(), other)
	}
}

func TestSums(t *testing.T) {
	t.Parallel()
	var s triage.Sums
	for _, a := range [][2]string{{"0.1", "USD"}, {"0.2", "USD"}, {"19.99", "EUR"}, {"-0.05", "EUR"}, {"3", ""}, {"0.000000000001", "BTC"}} {
		require.NoError(t, s.Add(a[0], a[1]))
	}
	require.NoError(t, s.Add("", "USD"), "no amount adds nothing")
	require.Error(t, s.Add("1e3", "USD"))
	require.Equal(t, map[string]string{"USD": "0.3", "EUR": "19.94", "": "3", "BTC": "0.000000000001"}, s.Map())
	require.Equal(t, "3, 0.000000000001 BTC, 19.94 EUR, 0.3 USD", s.String())

	var n triage.Sums
	require.NoError(t, n.Add("-1.5", "USD"))
	require.NoError(t, n.Add("1.25", "USD"))
	require.Equal(t, "-0.25", n.Map()["USD"])
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	require.Equal(t, "https://pb.example/c?click=***&email=***", triage.RedactURL("https://u:p@pb.example/c?click=abc&email=a@b.c#frag"))
	require.Equal(t, "see https://pb.example/c?x=*** now", triage.RedactText("see https://pb.example/c?x=1 now"))
}
