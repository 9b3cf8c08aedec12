package netguard_test

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"

	"github.com/postbackhq/postback/internal/netguard"
)

func ExampleCheck() {
	for _, s := range []string{"8.8.8.8", "10.0.0.1", "169.254.169.254", "64:ff9b::7f00:1"} {
		fmt.Println(netguard.Check(netip.MustParseAddr(s)))
	}
	// Output:
	// <nil>
	// address 10.0.0.1 blocked: private network (RFC 1918)
	// address 169.254.169.254 blocked: cloud metadata service (link-local)
	// address 64:ff9b::7f00:1 blocked: NAT64 of 127.0.0.1: loopback
}

func ExampleCheckURL() {
	// The decimal form of 127.0.0.1, which inet_aton-style resolvers accept.
	u, _ := url.Parse("http://2130706433/admin")
	err := netguard.CheckURL(u, false)

	var blocked *netguard.BlockedError
	fmt.Println(errors.As(err, &blocked), blocked.Addr, blocked.Reason)
	// Output:
	// true 127.0.0.1 loopback
}
