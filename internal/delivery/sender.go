package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/netguard"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/retry"
)

// Sender sends rendered requests through the SSRF-guarded client.
type Sender struct {
	Client *netguard.Client
	// Now stamps signatures; default time.Now.
	Now func() time.Time

	// guard and live, when set (by NewWorker), replace Client with the
	// guarded client of the config in force at each send.
	guard *guardedClients
	live  *config.Live
}

// client is the guarded client for this send.
func (s *Sender) client() *netguard.Client {
	if s.guard != nil {
		// The config in force now, not the one the delivery started with
		// (it may have waited at the gate): deliveries straddling a
		// reload all take the newest client.
		return s.guard.get(s.live.Load())
	}
	return s.Client
}

// Send signs r for partner p (when it signs), sends it within p's timeout
// and returns the attempt's result for classification, and the response.
func (s *Sender) Send(ctx context.Context, p *config.Partner, r *config.Request, deliveryID string) (retry.Result, *netguard.Response) {
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		// url.Parse's error quotes the whole URL, partner tokens and
		// personal data in its query included; records and logs get the
		// reason only.
		if urlErr, ok := errors.AsType[*url.Error](err); ok {
			err = urlErr.Err
		}
		return retry.Result{Err: fmt.Errorf("build request: %w", err)}, nil
	}
	req.Header = r.Header.Clone()
	if len(r.Body) > 0 {
		req.ContentLength = int64(len(r.Body))
	}
	if p.PropagateTrace {
		tracing.Inject(ctx, req.Header)
	}
	if p.Signer != nil {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		p.Signer.Header(req.Header, deliveryID, now(), r.Body)
	}
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	resp, err := s.client().Do(ctx, req)
	res := retry.Result{Err: err}
	if resp != nil {
		res.StatusCode, res.Header, res.Body = resp.StatusCode, resp.Header, resp.Body
	}
	return res, resp
}

// statusText is "HTTP 503" for logs and records.
func statusText(code int) string { return "HTTP " + strconv.Itoa(code) }
