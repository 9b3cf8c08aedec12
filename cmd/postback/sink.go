package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

func sinkCommand() *cli.Command {
	return &cli.Command{
		Name:  "sink",
		Usage: "a partner stand-in that logs every postback it receives",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":9090", Usage: "listen address"},
			&cli.Float64Flag{Name: "fail-rate", Usage: "fraction of requests answered with --status (0..1)"},
			&cli.IntFlag{Name: "status", Value: 500, Usage: "status of failed answers"},
		},
		Action: func(c *cli.Context) error {
			rate := c.Float64("fail-rate")
			if rate < 0 || rate > 1 {
				return usageError("--fail-rate %v: want a fraction between 0 and 1", rate)
			}
			status := c.Int("status")
			if status < 100 || status > 599 {
				return usageError("--status %d: want an HTTP status code", status)
			}
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				return fmt.Errorf("listen on %s: %w", c.String("listen"), err)
			}
			fmt.Fprintf(c.App.Writer, "sink: listening on http://%s (fail-rate %.2f, status %d)\n", ln.Addr(), rate, status)
			srv := &http.Server{Handler: newSink(c.App.Writer, rate, status), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() { <-ctx.Done(); _ = srv.Close() }()
			if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
}

// sink logs each request it receives and answers 200, or --status for a
// --fail-rate share of them.
type sink struct {
	mu     sync.Mutex
	w      io.Writer
	rate   float64
	status int
	n      int
}

func newSink(w io.Writer, rate float64, status int) *sink {
	return &sink{w: w, rate: rate, status: status}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	code := http.StatusOK
	if s.rate > 0 && rand.Float64() < s.rate {
		code = s.status
	}
	s.mu.Lock()
	s.n++
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s %s -> %d\n", s.n, time.Now().Format(time.TimeOnly), r.Method, r.URL.RequestURI(), code)
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "    %s: %s\n", k, strings.Join(r.Header[k], ", "))
	}
	if len(body) > 0 {
		fmt.Fprintf(&b, "    body: %s\n", body)
	}
	_, _ = io.WriteString(s.w, b.String())
	s.mu.Unlock()
	w.WriteHeader(code)
	if code == http.StatusOK {
		_, _ = io.WriteString(w, "ok\n")
	} else {
		_, _ = io.WriteString(w, "error\n")
	}
}
