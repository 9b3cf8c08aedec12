//go:build faults

package faults

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// partner is a real HTTP partner on a fixed loopback port. It records every
// request by event id (the `e` query parameter) with its Idempotency-Key
// and the time the event's first request arrived, and can hold requests,
// slow them down, or go down and come back.
type partner struct {
	t    *testing.T
	addr string
	URL  string

	mu         sync.Mutex
	srv        *http.Server
	seen       map[string][]string  // event id -> Idempotency-Key of every request that arrived
	answered   map[string]int       // event id -> requests answered 200
	first      map[string]time.Time // event id -> arrival of its first request
	last       time.Time            // arrival of the latest request
	requestLog []arrival            // every request, in arrival order
	hold       chan struct{}        // non-nil: requests wait until it is closed
	delay      time.Duration

	inflight atomic.Int64
	aborted  atomic.Int64 // requests whose client went away before the answer
}

// arrival is one request: its event id and when it arrived.
type arrival struct {
	event string
	at    time.Time
}

// Arrivals returns every request so far, in arrival order.
func (p *partner) Arrivals() []arrival {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]arrival(nil), p.requestLog...)
}

func newPartner(t *testing.T) *partner {
	t.Helper()
	p := &partner{t: t, seen: map[string][]string{}, answered: map[string]int{}, first: map[string]time.Time{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.URL = "http://" + p.addr
	p.serve(ln)
	t.Cleanup(func() { p.Down() })
	return p
}

func (p *partner) serve(ln net.Listener) {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (p *partner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	id := r.URL.Query().Get("e")
	now := time.Now()
	p.mu.Lock()
	if _, ok := p.first[id]; !ok {
		p.first[id] = now
	}
	p.last = now
	p.requestLog = append(p.requestLog, arrival{id, now})
	p.seen[id] = append(p.seen[id], r.Header.Get("Idempotency-Key"))
	hold, delay := p.hold, p.delay
	p.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			p.aborted.Add(1)
			return
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			p.aborted.Add(1)
			return
		}
	}
	if _, err := w.Write([]byte("ok")); err != nil {
		p.aborted.Add(1)
		return
	}
	p.mu.Lock()
	p.answered[id]++
	p.mu.Unlock()
}

// Hold makes requests wait until Release.
func (p *partner) Hold() {
	p.mu.Lock()
	p.hold = make(chan struct{})
	p.mu.Unlock()
}

// Release lets held requests (and later ones) through.
func (p *partner) Release() {
	p.mu.Lock()
	if p.hold != nil {
		close(p.hold)
		p.hold = nil
	}
	p.mu.Unlock()
}

// SetDelay makes every answer wait d.
func (p *partner) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Down closes the listener and every connection: connections are refused.
func (p *partner) Down() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens again on the same address.
func (p *partner) Up() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old socket may take a moment to go
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Errorf("partner up again on %s: %v", p.addr, err)
		return
	}
	p.serve(ln)
}

// Flap takes the partner down for down, up for up, until ctx ends, and
// leaves it up.
func (p *partner) Flap(ctx context.Context, down, up time.Duration) {
	defer func() {
		p.mu.Lock()
		isDown := p.srv == nil
		p.mu.Unlock()
		if isDown {
			p.Up()
		}
	}()
	for {
		p.Down()
		if !sleepCtx(ctx, down) {
			return
		}
		p.Up()
		if !sleepCtx(ctx, up) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// count is what the partner saw of the events in want.
type count struct {
	Missing    []string // accepted, never answered 200
	Duplicates int      // requests beyond the first per event
	WrongKey   []string // events whose requests did not all carry the delivery id as Idempotency-Key
	Unexpected int      // events seen that were never accepted
}

// check compares what arrived with accepted (event id -> delivery id).
func (p *partner) check(accepted map[string]string) count {
	p.mu.Lock()
	defer p.mu.Unlock()
	var c count
	for ev, dlv := range accepted {
		if p.answered[ev] == 0 {
			c.Missing = append(c.Missing, ev)
		}
		keys := p.seen[ev]
		c.Duplicates += max(0, len(keys)-1)
		for _, k := range keys {
			if k != dlv {
				c.WrongKey = append(c.WrongKey, fmt.Sprintf("%s: %q != %q", ev, k, dlv))
				break
			}
		}
	}
	for ev := range p.seen {
		if _, ok := accepted[ev]; !ok {
			c.Unexpected++
		}
	}
	sort.Strings(c.Missing)
	return c
}

// delivered is how many of accepted were answered 200 at least once.
func (p *partner) delivered(accepted map[string]string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for ev := range accepted {
		if p.answered[ev] > 0 {
			n++
		}
	}
	return n
}

// requests is how many requests arrived in all.
func (p *partner) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, k := range p.seen {
		n += len(k)
	}
	return n
}

// seenTwice is how many events arrived more than once.
func (p *partner) seenTwice() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, k := range p.seen {
		if len(k) > 1 {
			n++
		}
	}
	return n
}

// arrivals is when the last of accepted's events first arrived, and when
// the latest request of all (a duplicate, perhaps) did.
func (p *partner) arrivals(accepted map[string]string) (lastFirst, last time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ev := range accepted {
		if at := p.first[ev]; at.After(lastFirst) {
			lastFirst = at
		}
	}
	return lastFirst, p.last
}
