package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// partner is the loopback partner: it answers 200 to every postback and
// records, per event id (the `e` query parameter), when it first arrived.
//
// It speaks just enough HTTP/1.1 for a postback (a request line, headers,
// an optional Content-Length body; keep-alive) and answers each request in
// one write. A real partner runs on its own machine; this one shares the
// bench's cores with the worker it measures, and net/http's server would
// take a larger share of them than postback's own sending does. Anything
// it does not understand gets a 400 and a closed connection, which the
// worker counts as a failed attempt, so a misunderstanding shows up as
// retries rather than as speed.
type partner struct {
	ln       net.Listener
	addr     string
	received atomic.Int64 // requests, duplicates included
	wg       sync.WaitGroup

	mu     sync.Mutex
	first  map[string]int64 // event id -> first receipt (Unix ns)
	conns  map[net.Conn]struct{}
	closed bool
}

func startPartner(listen string) (*partner, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("bench partner: listen on %s: %w", listen, err)
	}
	p := &partner{ln: ln, addr: ln.Addr().String(), first: make(map[string]int64), conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *partner) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() {
			defer func() {
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
				_ = c.Close()
			}()
			p.serve(c)
		})
	}
}

var (
	answerOK  = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
	answerBad = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
)

// serve answers the requests of one connection until it closes.
func (p *partner) serve(c net.Conn) {
	br := bufio.NewReaderSize(c, 8<<10)
	for {
		id, keep, err := readPostback(br)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			_, _ = c.Write(answerBad)
			return
		}
		now := time.Now().UnixNano()
		p.received.Add(1)
		p.mu.Lock()
		if _, ok := p.first[id]; !ok {
			p.first[id] = now
		}
		p.mu.Unlock()
		if _, err := c.Write(answerOK); err != nil || !keep {
			return
		}
	}
}

// readPostback reads one request and returns its `e` query parameter and
// whether the connection stays open.
func readPostback(br *bufio.Reader) (id string, keep bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return "", false, err
	}
	// "GET /pb?e=…&… HTTP/1.1"
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || len(method) == 0 || !bytes.HasPrefix(proto, []byte("HTTP/1.")) {
		return "", false, fmt.Errorf("%w: request line %.60q", errBadHTTP, line)
	}
	keep = bytes.Equal(proto, []byte("HTTP/1.1"))
	// line points into br's buffer, which the reads below may refill:
	// take the id now.
	id, err = eventParam(target)
	if err != nil {
		return "", false, err
	}
	h, err := readHeaders(br)
	switch {
	case err != nil:
		return "", false, err
	case h.encoded:
		return "", false, fmt.Errorf("%w: chunked requests are not supported", errBadHTTP)
	}
	keep = keep && !h.close
	length := max(h.length, 0)
	if _, err := br.Discard(length); err != nil {
		return "", false, err
	}
	return id, keep, nil
}

// eventParam returns the `e` query parameter of a request target.
func eventParam(target []byte) (string, error) {
	_, query, _ := bytes.Cut(target, []byte("?"))
	for len(query) > 0 {
		var kv []byte
		kv, query, _ = bytes.Cut(query, []byte("&"))
		if v, ok := bytes.CutPrefix(kv, []byte("e=")); ok {
			id, err := url.QueryUnescape(string(v))
			if err != nil {
				return "", fmt.Errorf("%w: e=%.40q", errBadHTTP, v)
			}
			return id, nil
		}
	}
	return "", nil
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

// close stops listening, closes every connection and waits for their
// goroutines.
func (p *partner) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
