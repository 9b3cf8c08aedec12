package httpapi

import (
	"bytes"
	"errors"
	"net"
)

// errBareLF is a connection whose first header block ends in a bare LF.
var errBareLF = errors.New("the header block ends in bare LF line ends; HTTP/1.1 ends lines with CRLF")

// crlfListener checks the first header block of each connection for the
// end fasthttp waits for: fasthttp takes a line that ends in a bare LF,
// but ends a header block only at CRLF CRLF (so that it frames requests as
// a strict peer would), and waits for one, until the read timeout, when a
// client ends its block with bare LFs. Such a client, whose every request
// would wait so, is answered 400 at once instead: its connection fails
// with errBareLF. Later requests on a connection are not checked, which
// would need their framing; a client that got its first one right ends
// the others the same way.
type crlfListener struct{ net.Listener }

func (l crlfListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &crlfConn{Conn: c}, nil
}

// crlfConn is a connection whose first header block is being checked.
type crlfConn struct {
	net.Conn
	ends blockEnd
}

func (c *crlfConn) Read(p []byte) (int, error) {
	switch c.ends.state {
	case blockBareLF:
		return 0, errBareLF
	case blockCRLF:
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p)
	c.ends.scan(p[:n])
	return n, err
}

// blockEnd follows a header block to its end, the first empty line after
// the request line (empty lines before it are skipped, as fasthttp does).
type blockEnd struct {
	state    uint8
	started  bool // a line of the block has ended
	lineLen  int  // bytes of the current line so far
	lastCR   bool // the current line's last byte so far is CR
	prevCRLF bool // the last line ended in CRLF
}

// The states of a blockEnd.
const (
	blockOpen   = iota // not ended yet
	blockCRLF          // ended by CRLF CRLF
	blockBareLF        // ended otherwise
)

func (e *blockEnd) scan(b []byte) {
	for e.state == blockOpen && len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			e.lineLen += len(b)
			e.lastCR = b[len(b)-1] == '\r'
			return
		}
		if i > 0 {
			e.lineLen += i
			e.lastCR = b[i-1] == '\r'
		}
		b = b[i+1:]
		crlf := e.lineLen > 0 && e.lastCR
		switch empty := e.lineLen == 0 || (e.lineLen == 1 && e.lastCR); {
		case empty && e.started:
			e.state = blockBareLF
			if crlf && e.prevCRLF {
				e.state = blockCRLF
			}
		case !empty:
			e.started = true
		}
		e.prevCRLF, e.lineLen, e.lastCR = crlf, 0, false
	}
}
