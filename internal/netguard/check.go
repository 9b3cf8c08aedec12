package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// BlockedError reports a destination the guard refuses. Match it with
// errors.As; a delivery that gets one is dead-lettered, not retried, since the
// address will not change by waiting.
type BlockedError struct {
	Addr   netip.Addr // the refused address; the zero Addr when the URL itself is refused
	Host   string     // the host name it came from, when it came from one
	Reason string     // why, for example "private network (RFC 1918)"
}

func (e *BlockedError) Error() string {
	if !e.Addr.IsValid() {
		return "destination blocked: " + e.Reason
	}
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("address %s (host %q) blocked: %s", e.Addr, e.Host, e.Reason)
	}
	return fmt.Sprintf("address %s blocked: %s", e.Addr, e.Reason)
}

// Blocked reports true, so that callers can test for the behaviour with a
// small interface instead of importing this package.
func (e *BlockedError) Blocked() bool { return true }

// blockRule is one row of the table Check walks in order, first match wins.
// With embedded set, an address in prefix is judged by the IPv4 address it
// embeds instead of being blocked outright.
type blockRule struct {
	prefix   netip.Prefix
	reason   string
	embedded func(netip.Addr) netip.Addr
}

// blockRules lists the refused ranges. More specific prefixes come before the
// ranges that contain them so that the reason is the most telling one.
var blockRules = []blockRule{
	// IPv4.
	{prefix: pfx("0.0.0.0/32"), reason: "unspecified address"},
	{prefix: pfx("0.0.0.0/8"), reason: `"this network" (RFC 1122)`},
	{prefix: pfx("10.0.0.0/8"), reason: "private network (RFC 1918)"},
	{prefix: pfx("100.64.0.0/10"), reason: "carrier-grade NAT (RFC 6598)"},
	{prefix: pfx("127.0.0.0/8"), reason: "loopback"},
	{prefix: pfx("169.254.169.254/32"), reason: "cloud metadata service (link-local)"},
	{prefix: pfx("169.254.0.0/16"), reason: "link-local"},
	{prefix: pfx("172.16.0.0/12"), reason: "private network (RFC 1918)"},
	{prefix: pfx("192.0.0.0/24"), reason: "IETF protocol assignments (RFC 6890)"},
	{prefix: pfx("192.0.2.0/24"), reason: "documentation (RFC 5737)"},
	{prefix: pfx("192.88.99.0/24"), reason: "deprecated 6to4 relay anycast (RFC 7526)"},
	{prefix: pfx("192.168.0.0/16"), reason: "private network (RFC 1918)"},
	{prefix: pfx("198.18.0.0/15"), reason: "benchmarking (RFC 2544)"},
	{prefix: pfx("198.51.100.0/24"), reason: "documentation (RFC 5737)"},
	{prefix: pfx("203.0.113.0/24"), reason: "documentation (RFC 5737)"},
	{prefix: pfx("224.0.0.0/4"), reason: "multicast"},
	{prefix: pfx("255.255.255.255/32"), reason: "broadcast"},
	{prefix: pfx("240.0.0.0/4"), reason: "reserved (RFC 1112)"},

	// IPv6.
	{prefix: pfx("::/128"), reason: "unspecified address"},
	{prefix: pfx("::1/128"), reason: "loopback"},
	{prefix: pfx("::ffff:0:0/96"), reason: "IPv4-mapped IPv6 address"},
	{prefix: pfx("::/96"), reason: "IPv4-compatible IPv6 address (deprecated)"},
	{prefix: pfx("64:ff9b::/96"), reason: "NAT64", embedded: lastFour},
	{prefix: pfx("64:ff9b:1::/48"), reason: "local-use NAT64 (RFC 8215)"},
	{prefix: pfx("100::/64"), reason: "discard-only (RFC 6666)"},
	{prefix: pfx("2001::/32"), reason: "Teredo tunnelling"},
	{prefix: pfx("2001:2::/48"), reason: "benchmarking (RFC 5180)"},
	{prefix: pfx("2001:10::/28"), reason: "ORCHID (deprecated)"},
	{prefix: pfx("2001:20::/28"), reason: "ORCHIDv2 (RFC 7343)"},
	{prefix: pfx("2001:db8::/32"), reason: "documentation (RFC 3849)"},
	{prefix: pfx("3fff::/20"), reason: "documentation (RFC 9637)"},
	{prefix: pfx("2002::/16"), reason: "6to4", embedded: sixToFour},
	{prefix: pfx("fc00::/7"), reason: "unique local address (RFC 4193)"},
	{prefix: pfx("fe80::/10"), reason: "link-local"},
	{prefix: pfx("fec0::/10"), reason: "site-local (deprecated)"},
	{prefix: pfx("ff00::/8"), reason: "multicast"},
	// Everything else outside global unicast is unassigned or special.
	{prefix: pfx("::/0"), reason: "not global unicast (outside 2000::/3)"},
}

// globalUnicast is the only IPv6 space the final catch-all rule lets through.
var globalUnicast = pfx("2000::/3")

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// lastFour returns the IPv4 address in the low 32 bits (NAT64, RFC 6052).
func lastFour(ip netip.Addr) netip.Addr {
	b := ip.As16()
	return netip.AddrFrom4([4]byte(b[12:16]))
}

// sixToFour returns the IPv4 address in bits 16–47 (6to4, RFC 3056).
func sixToFour(ip netip.Addr) netip.Addr {
	b := ip.As16()
	return netip.AddrFrom4([4]byte(b[2:6]))
}

// Check reports whether ip may be dialled: nil, or a *BlockedError saying why
// not. An IPv6 zone is ignored; the zero Addr is refused.
func Check(ip netip.Addr) error {
	if reason := blockedReason(ip); reason != "" {
		return &BlockedError{Addr: ip, Reason: reason}
	}
	return nil
}

func blockedReason(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid address"
	}
	ip = ip.WithZone("") // Prefix.Contains never matches an address with a zone.
	for _, r := range blockRules {
		if !r.prefix.Contains(ip) {
			continue
		}
		if r.prefix.Bits() == 0 && globalUnicast.Contains(ip) {
			return ""
		}
		if r.embedded != nil {
			v4 := r.embedded(ip)
			if reason := blockedReason(v4); reason != "" {
				return fmt.Sprintf("%s of %s: %s", r.reason, v4, reason)
			}
			return ""
		}
		return r.reason
	}
	return ""
}

// ErrScheme is returned by CheckURL for a URL that is not http or https.
var ErrScheme = errors.New("scheme must be http or https")

// CheckURL refuses a URL the client must not send to: a scheme other than
// http or https, no host, or (unless allowPrivate) a host that is a blocked IP
// literal in any form a resolver might accept, including inet_aton's decimal,
// hex, octal and shortened IPv4 forms. Host names are not resolved here; the
// dialer checks what they resolve to. Userinfo is allowed. Errors never
// contain the URL, which may carry secrets.
func CheckURL(u *url.URL, allowPrivate bool) error {
	if u == nil {
		return errors.New("no URL")
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return fmt.Errorf("%w, not %q", ErrScheme, u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("URL has no host")
	}
	if allowPrivate {
		return nil
	}
	ip, ok := parseIPLiteral(host)
	if !ok {
		return nil
	}
	if err := Check(ip); err != nil {
		var be *BlockedError
		if errors.As(err, &be) {
			be.Host = host
		}
		return err
	}
	return nil
}

// parseIPLiteral parses host as an IP address the way resolvers do: netip's
// strict forms first, then the IPv4 forms of inet_aton.
func parseIPLiteral(host string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), true
	}
	return parseInetAton(host)
}

// parseInetAton accepts what inet_aton(3) accepts: one to four parts separated
// by dots, each decimal, octal (leading 0) or hex (leading 0x), the last part
// filling the remaining bytes ("127.1" is 127.0.0.1, "2130706433" is too).
// A single trailing dot is tolerated, as it names the same host to a resolver.
func parseInetAton(s string) (netip.Addr, bool) {
	s = strings.TrimSuffix(s, ".")
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		v, ok := parseAtonPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var out uint64
	last := len(vals) - 1
	for i, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		out |= v << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	out |= vals[last]
	return netip.AddrFrom4([4]byte{byte(out >> 24), byte(out >> 16), byte(out >> 8), byte(out)}), true
}

func parseAtonPart(p string) (uint64, bool) {
	base := 10
	switch {
	case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
		base, p = 16, p[2:]
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	if p == "" || p[0] == '+' || p[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(p, base, 32)
	if err != nil {
		return 0, false
	}
	return v, true
}
