package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// partner is the loopback HTTP partner: it answers 200 to every postback and
// records, per event id (the `e` query parameter), when it first arrived.
type partner struct {
	srv      *http.Server
	addr     string
	received atomic.Int64 // requests, duplicates included

	mu    sync.Mutex
	first map[string]int64 // event id -> first receipt (Unix ns)
}

func startPartner(listen string) (*partner, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("bench partner: listen on %s: %w", listen, err)
	}
	p := &partner{addr: ln.Addr().String(), first: make(map[string]int64)}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *partner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UnixNano()
	id := r.URL.Query().Get("e")
	p.received.Add(1)
	p.mu.Lock()
	if _, ok := p.first[id]; !ok {
		p.first[id] = now
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}

// unique is how many distinct events arrived since the last reset.
func (p *partner) unique() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.first))
}

// firstReceipt returns when event id first arrived.
func (p *partner) firstReceipt(id string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ns, ok := p.first[id]
	return time.Unix(0, ns), ok
}

// reset forgets what arrived, for the next phase.
func (p *partner) reset() {
	p.mu.Lock()
	p.first = make(map[string]int64)
	p.mu.Unlock()
	p.received.Store(0)
}

func (p *partner) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}
