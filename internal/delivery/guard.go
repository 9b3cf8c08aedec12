package delivery

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/netguard"
)

// guardedClients hands the worker's handlers the SSRF-guarded HTTP client
// for the config in force. Two settings are the client's own rather than a
// request's: delivery.allow_private_networks and the longest partner
// timeout. A reload that changes either gets a new client at the next
// delivery; the old one finishes what it is sending and its idle
// connections are closed. Turning the guard back on therefore takes effect
// without a restart, and no connection dialled without the guard is reused
// after it.
type guardedClients struct {
	base netguard.Config // all but AllowPrivate and Timeout
	mu   sync.Mutex      // serialises building a new client
	cur  atomic.Pointer[guardedClient]
}

type guardedClient struct {
	allowPrivate bool
	timeout      time.Duration
	client       *netguard.Client
}

func newGuardedClients(base netguard.Config, c *config.Config) *guardedClients {
	g := &guardedClients{base: base}
	g.get(c)
	return g
}

// get returns the client for c, building it when c's settings differ from
// the current client's.
func (g *guardedClients) get(c *config.Config) *netguard.Client {
	allow, timeout := c.Delivery.AllowPrivateNetworks, maxTimeout(c)
	if cur := g.cur.Load(); cur != nil && cur.allowPrivate == allow && cur.timeout == timeout {
		return cur.client
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.cur.Load()
	if old != nil && old.allowPrivate == allow && old.timeout == timeout {
		return old.client // built by another delivery meanwhile
	}
	cfg := g.base
	cfg.AllowPrivate, cfg.Timeout = allow, timeout
	next := &guardedClient{allowPrivate: allow, timeout: timeout, client: netguard.New(cfg)}
	g.cur.Store(next)
	if old != nil {
		// Requests still under way on the old client put their
		// connections back when done; by the old timeout they all have.
		old.client.CloseIdleConnections()
		time.AfterFunc(old.timeout+time.Second, old.client.CloseIdleConnections)
	}
	return next.client
}

// closeIdle closes the current client's idle connections.
func (g *guardedClients) closeIdle() {
	if cur := g.cur.Load(); cur != nil {
		cur.client.CloseIdleConnections()
	}
}
