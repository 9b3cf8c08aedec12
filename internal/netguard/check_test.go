package netguard

import (
	"context"
	"net/netip"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	t.Parallel()

	tests := []struct {
		addr       string
		wantReason string // "" = allowed
	}{
		// Allowed: public unicast.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.215.14", ""},
		{"100.63.255.255", ""},  // just below CGNAT
		{"100.128.0.0", ""},     // just above CGNAT
		{"172.15.255.255", ""},  // just below 172.16/12
		{"172.32.0.0", ""},      // just above 172.16/12
		{"223.255.255.255", ""}, // just below multicast
		{"2606:4700::1111", ""},
		{"2001:4860:4860::8888", ""},
		{"64:ff9b::808:808", ""},       // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},        // 6to4 of 8.8.8.8
		{"fe80::1%eth0", "link-local"}, // zone ignored, still judged

		// IPv4 blocked.
		{"0.0.0.0", "unspecified address"},
		{"0.1.2.3", `"this network" (RFC 1122)`},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"10.0.0.1", "private network (RFC 1918)"},
		{"172.16.0.1", "private network (RFC 1918)"},
		{"172.31.255.255", "private network (RFC 1918)"},
		{"192.168.1.1", "private network (RFC 1918)"},
		{"169.254.169.254", "cloud metadata service (link-local)"},
		{"169.254.1.1", "link-local"},
		{"100.64.0.1", "carrier-grade NAT (RFC 6598)"},
		{"100.100.100.200", "carrier-grade NAT (RFC 6598)"}, // Alibaba metadata
		{"192.0.0.192", "IETF protocol assignments (RFC 6890)"},
		{"192.0.2.1", "documentation (RFC 5737)"},
		{"198.51.100.7", "documentation (RFC 5737)"},
		{"203.0.113.7", "documentation (RFC 5737)"},
		{"192.88.99.1", "deprecated 6to4 relay anycast (RFC 7526)"},
		{"198.18.0.1", "benchmarking (RFC 2544)"},
		{"198.19.255.255", "benchmarking (RFC 2544)"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved (RFC 1112)"},
		{"255.255.255.255", "broadcast"},

		// IPv6 blocked.
		{"::", "unspecified address"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "IPv4-mapped IPv6 address"},
		{"::ffff:8.8.8.8", "IPv4-mapped IPv6 address"},
		{"::127.0.0.1", "IPv4-compatible IPv6 address (deprecated)"},
		{"::8.8.8.8", "IPv4-compatible IPv6 address (deprecated)"},
		{"64:ff9b::7f00:1", "NAT64 of 127.0.0.1: loopback"},
		{"64:ff9b::a9fe:a9fe", "NAT64 of 169.254.169.254: cloud metadata service (link-local)"},
		{"64:ff9b:1::808:808", "local-use NAT64 (RFC 8215)"},
		{"2002:7f00:1::", "6to4 of 127.0.0.1: loopback"},
		{"2002:a00:1::1", "6to4 of 10.0.0.1: private network (RFC 1918)"},
		{"2001::1", "Teredo tunnelling"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo tunnelling"},
		{"2001:2::1", "benchmarking (RFC 5180)"},
		{"2001:db8::1", "documentation (RFC 3849)"},
		{"3fff::1", "documentation (RFC 9637)"},
		{"100::1", "discard-only (RFC 6666)"},
		{"fc00::1", "unique local address (RFC 4193)"},
		{"fd00:ec2::254", "unique local address (RFC 4193)"}, // AWS IMDS over IPv6
		{"fe80::1", "link-local"},
		{"febf::1", "link-local"},
		{"fec0::1", "site-local (deprecated)"},
		{"ff02::1", "multicast"},
		{"ff0e::1", "multicast"},
		{"4000::1", "not global unicast (outside 2000::/3)"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			ip := netip.MustParseAddr(tt.addr)
			err := Check(ip)
			if tt.wantReason == "" {
				require.NoError(t, err)
				return
			}
			var be *BlockedError
			require.ErrorAs(t, err, &be)
			require.True(t, be.Blocked())
			require.Equal(t, ip, be.Addr)
			require.Equal(t, tt.wantReason, be.Reason)
		})
	}
}

func TestCheck_invalid(t *testing.T) {
	t.Parallel()
	var be *BlockedError
	require.ErrorAs(t, Check(netip.Addr{}), &be)
}

func TestBlockedError_Error(t *testing.T) {
	t.Parallel()

	err := Check(netip.MustParseAddr("10.0.0.1"))
	require.EqualError(t, err, "address 10.0.0.1 blocked: private network (RFC 1918)")

	err = &BlockedError{Addr: netip.MustParseAddr("127.0.0.1"), Host: "partner.example", Reason: "loopback"}
	require.EqualError(t, err, `address 127.0.0.1 (host "partner.example") blocked: loopback`)

	err = control(context.Background(), "tcp", "nonsense", nil)
	require.EqualError(t, err, `destination blocked: unparseable dial address "nonsense"`)
}

func TestCheckURL(t *testing.T) {
	t.Parallel()

	tests := []struct {
		url         string
		wantBlocked string // the blocked address, for *BlockedError
		wantErr     bool   // a plain error
	}{
		{url: "https://pb.acme.example/c?click_id=1"},
		{url: "http://8.8.8.8/"},
		{url: "https://[2606:4700::1111]:8443/"},
		{url: "https://user:secret@partner.example/"}, // userinfo allowed
		{url: "HTTPS://partner.example/"},
		{url: "http://134744072/"}, // 8.8.8.8 in decimal: public, allowed
		{url: "http://localhost/"}, // a name: judged by the dialer after resolution

		{url: "http://127.0.0.1/", wantBlocked: "127.0.0.1"},
		{url: "http://127.0.0.1./", wantBlocked: "127.0.0.1"},
		{url: "http://2130706433/", wantBlocked: "127.0.0.1"},
		{url: "http://0x7f000001/", wantBlocked: "127.0.0.1"},
		{url: "http://0X7F.0.0.1/", wantBlocked: "127.0.0.1"},
		{url: "http://0177.0.0.1/", wantBlocked: "127.0.0.1"},
		{url: "http://017700000001/", wantBlocked: "127.0.0.1"},
		{url: "http://127.1/", wantBlocked: "127.0.0.1"},
		{url: "http://127.0.1/", wantBlocked: "127.0.0.1"},
		{url: "http://10.1/", wantBlocked: "10.0.0.1"},
		{url: "http://0/", wantBlocked: "0.0.0.0"},
		{url: "http://169.254.169.254/latest/meta-data/", wantBlocked: "169.254.169.254"},
		{url: "http://0xa9.0xfe.0xa9.0xfe/", wantBlocked: "169.254.169.254"},
		{url: "http://0251.0376.0251.0376/", wantBlocked: "169.254.169.254"},
		{url: "http://[::1]:8080/", wantBlocked: "::1"},
		{url: "http://[::ffff:127.0.0.1]/", wantBlocked: "127.0.0.1"},
		{url: "http://[::ffff:7f00:1]/", wantBlocked: "127.0.0.1"},
		{url: "http://[fe80::1%25eth0]/", wantBlocked: "fe80::1%eth0"},
		{url: "http://[fd00:ec2::254]/", wantBlocked: "fd00:ec2::254"},
		{url: "http://user:pw@192.168.0.1/", wantBlocked: "192.168.0.1"},

		{url: "ftp://partner.example/", wantErr: true},
		{url: "file:///etc/passwd", wantErr: true},
		{url: "gopher://127.0.0.1:6379/_FLUSHALL", wantErr: true},
		{url: "http:///path", wantErr: true},
		{url: "/relative", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(tt.url)
			require.NoError(t, err)

			err = CheckURL(u, false)
			switch {
			case tt.wantBlocked != "":
				var be *BlockedError
				require.ErrorAs(t, err, &be)
				require.Equal(t, netip.MustParseAddr(tt.wantBlocked), be.Addr)
				require.Equal(t, u.Hostname(), be.Host)
				require.NotContains(t, err.Error(), "pw", "userinfo must never appear")
				require.NoError(t, CheckURL(u, true), "AllowPrivate opens IP literals")
			case tt.wantErr:
				require.Error(t, err)
				require.NotErrorAs(t, err, new(*BlockedError))
				require.Error(t, CheckURL(u, true), "AllowPrivate keeps the scheme and host rules")
			default:
				require.NoError(t, err)
			}
		})
	}
}

func TestParseInetAton(t *testing.T) {
	t.Parallel()

	for in, want := range map[string]string{
		"1":               "0.0.0.1",
		"1.2":             "1.0.0.2",
		"1.2.3":           "1.2.0.3",
		"1.2.3.4":         "1.2.3.4",
		"1.65535":         "1.0.255.255",
		"1.2.65535":       "1.2.255.255",
		"4294967295":      "255.255.255.255",
		"0xffffffff":      "255.255.255.255",
		"037777777777":    "255.255.255.255",
		"0x7f.0x0.0x0.01": "127.0.0.1",
	} {
		got, ok := parseInetAton(in)
		require.True(t, ok, in)
		require.Equal(t, want, got.String(), in)
	}
	for _, in := range []string{
		"", ".", "1..2", "1.2.3.4.5", "4294967296", "1.16777216", "256.1.1.1", "1.2.3.256",
		"08", "0x", "0xg", "-1", "+1", "1.-2", "partner.example", "1e3", "１",
	} {
		_, ok := parseInetAton(in)
		require.False(t, ok, in)
	}
}

func TestControl(t *testing.T) {
	t.Parallel()

	ctx := context.Background()
	for address, wantBlocked := range map[string]bool{
		"10.0.0.1:80":            true,
		"127.0.0.1:8080":         true,
		"169.254.169.254:80":     true,
		"[::1]:443":              true,
		"[::ffff:127.0.0.1]:80":  true,
		"[64:ff9b::7f00:1]:443":  true,
		"[fd00:ec2::254]:80":     true,
		"[fe80::1%eth0]:80":      true,
		"not-an-address:80":      true,
		"8.8.8.8:443":            false,
		"[2606:4700::1111]:443":  false,
		"[64:ff9b::808:808]:443": false,
	} {
		// The hook only reads the address; no socket is involved.
		err := control(ctx, "tcp", address, nil)
		if wantBlocked {
			var be *BlockedError
			require.ErrorAs(t, err, &be, address)
		} else {
			require.NoError(t, err, address)
		}
	}
}
