// Package netguard is the HTTP client every postback goes through, with the
// guard against server-side request forgery (SSRF) that a sender of
// user-configured URLs needs.
//
// The guard is enforced where it cannot be bypassed: at dial time, on the
// address actually being connected to, after DNS resolution. A name that
// resolves to a public address when the config is validated and to 127.0.0.1
// when the postback is sent (DNS rebinding) is still refused. [CheckURL] adds
// an early, clearer refusal for URLs whose host is a blocked IP literal,
// including the decimal, hexadecimal, octal and shortened IPv4 forms that
// inet_aton accepts (http://2130706433/, http://0x7f000001/, http://127.1/).
//
// [Check] holds the blocked ranges. Besides loopback, private, link-local
// (cloud metadata), CGNAT, unique-local and multicast ranges it blocks the
// IPv4 and IPv6 documentation and benchmarking ranges, because no real partner
// lives there, and every IPv6 address outside global unicast 2000::/3. IPv6
// forms that embed an IPv4 address are judged by that address where the
// embedding is a translation a real network may use (NAT64 64:ff9b::/96, 6to4
// 2002::/16), and blocked outright where it is not (IPv4-mapped, IPv4-compatible,
// Teredo, local-use NAT64 64:ff9b:1::/48).
//
// When a name resolves to several addresses, blocked ones are skipped and the
// others tried in order; only when every address is blocked does the request
// fail with a [*BlockedError].
//
// Other properties of the client: no proxy (the guard must see the real target),
// redirects are never followed (a 3xx is returned as the response), every
// request has a total deadline that also covers reading the body, and both the
// response head (Config.MaxResponseHeaderBytes) and the body read
// (Config.MaxResponseBytes) are capped.
//
// Config.AllowPrivate switches the guard off, for local tests and demos.
package netguard
