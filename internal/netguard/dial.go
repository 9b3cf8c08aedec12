package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Resolver looks up the addresses of a host. *net.Resolver satisfies it;
// tests inject a [ResolverFunc].
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ResolverFunc adapts a function to [Resolver].
type ResolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// LookupNetIP calls f.
func (f ResolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// dialer resolves with the configured Resolver, checks every address before
// dialling it and, as a second line, again in the socket's Control hook on the
// exact address the kernel is asked to connect to.
type dialer struct {
	resolver     Resolver
	allowPrivate bool
	net          net.Dialer
}

func newDialer(cfg Config) *dialer {
	d := &dialer{resolver: cfg.Resolver, allowPrivate: cfg.AllowPrivate}
	d.net = net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: keepAlive}
	if !cfg.AllowPrivate {
		d.net.ControlContext = control
	}
	return d
}

// control is the net.Dialer hook run after the socket is created and before
// it connects. address is the literal IP and port being connected to.
func control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Never connect to something we cannot judge.
		return &BlockedError{Reason: fmt.Sprintf("unparseable dial address %q", address)}
	}
	return Check(ap.Addr())
}

// DialContext has the signature of http.Transport.DialContext.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := net.LookupPort(network, portStr)
	if err != nil {
		return nil, err
	}

	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = d.resolver.LookupNetIP(ctx, ipNetwork(network), host)
		if err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}

	// Try each address in the resolver's order. Blocked ones are skipped; the
	// error returned is the first real dial error if any address was tried
	// (retryable), else the first refusal (not retryable).
	var blocked, dialErr error
	for _, ip := range ips {
		// Resolvers hand IPv4 answers back as IPv4-mapped IPv6; dial (and
		// judge) the plain IPv4 address.
		ip = ip.Unmap()
		if !d.allowPrivate {
			if err := Check(ip); err != nil {
				var be *BlockedError
				if errors.As(err, &be) {
					be.Host = host
				}
				blocked = cmpOrErr(blocked, err)
				continue
			}
		}
		conn, err := d.net.DialContext(ctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		var be *BlockedError
		if errors.As(err, &be) {
			be.Host = host
			blocked = cmpOrErr(blocked, err)
			continue
		}
		dialErr = cmpOrErr(dialErr, err)
		if ctx.Err() != nil {
			break
		}
	}
	if dialErr != nil {
		return nil, dialErr
	}
	return nil, blocked
}

func cmpOrErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

func ipNetwork(network string) string {
	switch network {
	case "tcp4", "udp4":
		return "ip4"
	case "tcp6", "udp6":
		return "ip6"
	}
	return "ip"
}
