package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// loadClient is the producers' HTTP/1.1 client. Like wrk or h2load, it
// writes each request in one write on a kept-alive connection and parses
// only what it needs of the answer (status, Content-Length or chunked
// body, Connection: close), so that the figures measure the API rather
// than the load generator: net/http's client spends two goroutines, a
// header map and several allocations on every request, which on a small
// machine is CPU taken from the API it measures. Each call borrows a
// connection of its own; there are never more than the producers.
type loadClient struct {
	addr    string // host:port
	base    string // the API URL's path, without a trailing slash
	host    string // the Host header
	tls     *tls.Config
	auth    string // "Bearer …"
	timeout time.Duration
	idle    chan *loadConn
}

type loadConn struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

func newLoadClient(apiURL, apiKey string, timeout time.Duration, conns int) (*loadClient, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("bench: API URL: %w", err)
	}
	lc := &loadClient{host: u.Host, base: strings.TrimSuffix(u.Path, "/"), auth: "Bearer " + apiKey, timeout: timeout, idle: make(chan *loadConn, conns)}
	port := u.Port()
	switch u.Scheme {
	case "http":
		port = cmpOr(port, "80")
	case "https":
		port = cmpOr(port, "443")
		lc.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	default:
		return nil, fmt.Errorf("bench: API URL %q: the scheme must be http or https", apiURL)
	}
	lc.addr = net.JoinHostPort(u.Hostname(), port)
	return lc, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// post sends body to path and returns the status code and the answer's
// body.
//
// A kept-alive connection the server closed while it sat idle fails at
// once; the request is then sent again on a new connection, as net/http's
// client does. (Resending an event is safe: the API de-duplicates by id.)
func (lc *loadClient) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	path = lc.base + path
	c, reused, err := lc.conn(ctx)
	if err != nil {
		return 0, nil, err
	}
	code, answer, keep, err := lc.roundTrip(c, path, body)
	if err != nil && reused && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		_ = c.c.Close()
		if c, _, err = lc.dial(ctx); err != nil {
			return 0, nil, err
		}
		code, answer, keep, err = lc.roundTrip(c, path, body)
	}
	if err != nil || !keep {
		_ = c.c.Close()
		if err != nil {
			return 0, nil, fmt.Errorf("POST %s: %w", path, err)
		}
		return code, answer, nil
	}
	select {
	case lc.idle <- c:
	default:
		_ = c.c.Close()
	}
	return code, answer, nil
}

// conn returns an idle connection (reused) or a new one.
func (lc *loadClient) conn(ctx context.Context) (c *loadConn, reused bool, err error) {
	select {
	case c := <-lc.idle:
		return c, true, nil
	default:
	}
	return lc.dial(ctx)
}

func (lc *loadClient) dial(ctx context.Context) (*loadConn, bool, error) {
	d := net.Dialer{Timeout: lc.timeout}
	var c net.Conn
	var err error
	if lc.tls != nil {
		c, err = (&tls.Dialer{NetDialer: &d, Config: lc.tls}).DialContext(ctx, "tcp", lc.addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", lc.addr)
	}
	if err != nil {
		return nil, false, err
	}
	return &loadConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, false, nil
}

// roundTrip writes one request and reads its answer; keep says whether the
// connection may carry another.
func (lc *loadClient) roundTrip(c *loadConn, path string, body []byte) (code int, answer []byte, keep bool, err error) {
	if err := c.c.SetDeadline(time.Now().Add(lc.timeout)); err != nil {
		return 0, nil, false, err
	}
	b := c.req[:0]
	b = append(b, "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, lc.host...)
	b = append(b, "\r\nContent-Type: application/json\r\nAuthorization: "...)
	b = append(b, lc.auth...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.req = b
	if _, err := c.c.Write(b); err != nil {
		return 0, nil, false, err
	}
	return readAnswer(c.br)
}

var errBadHTTP = errors.New("malformed HTTP message")

// readAnswer reads one HTTP/1.1 response: the status line, the headers it
// needs, then the body by Content-Length or chunks.
func readAnswer(br *bufio.Reader) (code int, body []byte, keep bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return 0, nil, false, err
	}
	// "HTTP/1.1 202 Accepted"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, nil, false, fmt.Errorf("%w: status line %.40q", errBadHTTP, line)
	}
	code, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("%w: status line %.40q", errBadHTTP, line)
	}
	keep = line[7] == '1'
	h, err := readHeaders(br)
	if err != nil {
		return 0, nil, false, err
	}
	keep = keep && !h.close
	switch {
	case code < 200 || code == 204 || code == 304: // no body (RFC 9112 §6.3)
		if code < 200 {
			return 0, nil, false, fmt.Errorf("%w: interim answer %d is not supported", errBadHTTP, code)
		}
	case h.chunked:
		body, err = readChunked(br)
	case h.length >= 0:
		body = make([]byte, h.length)
		_, err = io.ReadFull(br, body)
	default: // the body runs to the end of the connection
		body, err = io.ReadAll(br)
		keep = false
	}
	if err != nil {
		return 0, nil, false, err
	}
	return code, body, keep, nil
}

func readChunked(br *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseUint(string(bytes.TrimSpace(size)), 16, 31)
		if err != nil {
			return nil, fmt.Errorf("%w: chunk size %.20q", errBadHTTP, line)
		}
		if n == 0 {
			for { // trailers, then the blank line
				t, err := readLine(br)
				if err != nil {
					return nil, err
				}
				if len(t) == 0 {
					return body, nil
				}
			}
		}
		start := len(body)
		body = append(body, make([]byte, n)...)
		if _, err := io.ReadFull(br, body[start:]); err != nil {
			return nil, err
		}
		if crlf, err := readLine(br); err != nil || len(crlf) != 0 {
			return nil, fmt.Errorf("%w: no CRLF after a chunk", errBadHTTP)
		}
	}
}

// headers is what the load client and the partner read of a header
// block.
type headers struct {
	length  int  // Content-Length; -1 when absent
	encoded bool // a Transfer-Encoding header is present
	chunked bool // ... and says chunked
	close   bool // Connection: close
}

// readHeaders reads header lines up to the blank line that ends them.
func readHeaders(br *bufio.Reader) (headers, error) {
	h := headers{length: -1}
	for {
		line, err := readLine(br)
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			return h, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, fmt.Errorf("%w: header %.40q", errBadHTTP, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if h.length, err = strconv.Atoi(string(value)); err != nil || h.length < 0 {
				return h, fmt.Errorf("%w: Content-Length %.20q", errBadHTTP, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			h.encoded, h.chunked = true, bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			h.close = h.close || bytes.EqualFold(value, []byte("close"))
		}
	}
}

// readLine reads a line without its CRLF; the slice is valid until the next
// read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: a line longer than %d bytes", errBadHTTP, br.Size())
		}
		return nil, err
	}
	return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
}

// close closes the idle connections.
func (lc *loadClient) close() {
	for {
		select {
		case c := <-lc.idle:
			_ = c.c.Close()
		default:
			return
		}
	}
}
