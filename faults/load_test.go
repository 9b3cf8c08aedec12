//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loader posts events to an API the way a careful app backend does: an
// event answered 503 or not answered at all is sent again until it is
// stored. It remembers every event the API accepted, with its delivery id.
type loader struct {
	t      *testing.T
	url    string
	prefix string
	http   *http.Client
	seq    atomic.Int64

	mu       sync.Mutex
	accepted map[string]string // event id -> delivery id
	statuses map[int]int       // answers by status; 0 = no answer (transport error)
	slowest  time.Duration     // longest wait for an answer
}

func newLoader(t *testing.T, apiURL, prefix string) *loader {
	return &loader{
		t: t, url: apiURL, prefix: prefix,
		http:     &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		accepted: map[string]string{}, statuses: map[int]int{},
	}
}

func eventBody(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"name":"purchase","click_id":"ck-%s","attribution":{"partner":"acme","campaign_id":"c1"},`+
		`"device":{"ip":"203.0.113.7","os":"ios","country":"US"},"revenue":{"amount":"1.99","currency":"USD"},"consent":{"granted":true}}`, id, id)
}

// post sends event id once and returns the status and the delivery id.
func (l *loader) post(ctx context.Context, id string) (int, string) {
	status, b := l.send(ctx, "/v1/events", eventBody(id))
	if status == 0 {
		return 0, ""
	}
	if status != http.StatusAccepted && status != http.StatusOK {
		if status != http.StatusServiceUnavailable {
			l.t.Errorf("POST /v1/events %s: %d %s", id, status, b)
		}
		return status, ""
	}
	var rc struct {
		Deliveries []struct {
			ID      string `json:"id"`
			Partner string `json:"partner"`
		} `json:"deliveries"`
	}
	if err := json.Unmarshal(b, &rc); err != nil {
		l.t.Errorf("POST /v1/events %s: answer %s (%v)", id, b, err)
		return status, ""
	}
	for _, d := range rc.Deliveries {
		if d.Partner == "acme" {
			return status, d.ID
		}
	}
	l.t.Errorf("POST /v1/events %s: no delivery to acme in %s", id, b)
	return status, ""
}

func (l *loader) tally(status int) {
	l.mu.Lock()
	l.statuses[status]++
	l.mu.Unlock()
}

// store sends event id until the API stores it or ctx ends.
func (l *loader) store(ctx context.Context, id string) bool {
	for ctx.Err() == nil {
		status, dlv := l.post(ctx, id)
		if dlv != "" {
			l.mu.Lock()
			l.accepted[id] = dlv
			l.mu.Unlock()
			return true
		}
		if status != 0 && status != http.StatusServiceUnavailable {
			return false
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
	return false
}

// sendN stores n new events with clients senders.
func (l *loader) sendN(ctx context.Context, n, clients int) {
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := l.seq.Add(1)
				if k > int64(n) {
					return
				}
				l.store(ctx, fmt.Sprintf("%s-%d", l.prefix, k))
			}
		})
	}
	wg.Wait()
	l.seq.Add(-int64(clients)) // the overshoot
}

// storeBatch sends events ids in one batch until the API stores them all
// or ctx ends; a 503 or no answer sends the batch again (the events stored
// before then come back as duplicates, with their deliveries).
func (l *loader) storeBatch(ctx context.Context, ids []string) {
	body := []byte(`{"events":[`)
	for i, id := range ids {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, eventBody(id)...)
	}
	body = append(body, "]}"...)
	for ctx.Err() == nil {
		status, answer := l.send(ctx, "/v1/events/batch", body)
		if status == http.StatusOK {
			l.keepBatch(ids, answer)
			return
		}
		if status != 0 && status != http.StatusServiceUnavailable {
			l.t.Errorf("POST /v1/events/batch: %d %s", status, answer)
			return
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

// send POSTs body to path and returns the status (0: no answer) and the
// answer.
func (l *loader) send(ctx context.Context, path string, body []byte) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url+path, bytes.NewReader(body))
	if err != nil {
		l.t.Error(err)
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	start := time.Now()
	resp, err := l.http.Do(req)
	l.mu.Lock()
	l.slowest = max(l.slowest, time.Since(start))
	l.mu.Unlock()
	if err != nil {
		l.tally(0)
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	l.tally(resp.StatusCode)
	return resp.StatusCode, b
}

// keepBatch records the deliveries to acme of a batch's answer; every
// event must have been stored.
func (l *loader) keepBatch(ids []string, answer []byte) {
	var out struct {
		Results []struct {
			Index      int    `json:"index"`
			Status     string `json:"status"`
			Deliveries []struct {
				ID      string `json:"id"`
				Partner string `json:"partner"`
			} `json:"deliveries"`
		} `json:"results"`
	}
	if err := json.Unmarshal(answer, &out); err != nil || len(out.Results) != len(ids) {
		l.t.Errorf("POST /v1/events/batch: answer %.200s (%v)", answer, err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range out.Results {
		if r.Status != "accepted" && r.Status != "duplicate" {
			l.t.Errorf("POST /v1/events/batch: event %s: %s", ids[r.Index], r.Status)
			continue
		}
		for _, d := range r.Deliveries {
			if d.Partner == "acme" {
				l.accepted[ids[r.Index]] = d.ID
			}
		}
	}
}

// sendBatches stores new events in batches of size, with clients senders,
// until n events (counting those stored before) are.
func (l *loader) sendBatches(ctx context.Context, n, clients, size int) {
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				last := l.seq.Add(int64(size))
				first := last - int64(size) + 1
				last = min(last, int64(n))
				if first > last {
					return
				}
				ids := make([]string, 0, last-first+1)
				for k := first; k <= last; k++ {
					ids = append(ids, fmt.Sprintf("%s-%d", l.prefix, k))
				}
				l.storeBatch(ctx, ids)
			}
		})
	}
	wg.Wait()
	l.seq.Store(int64(n))
}

// sendFor keeps clients senders storing new events, each at most every
// pause, until stop ends; an event under way then is still stored (until
// ctx ends).
func (l *loader) sendFor(ctx, stop context.Context, clients int, pause time.Duration) {
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for stop.Err() == nil && ctx.Err() == nil {
				l.store(ctx, fmt.Sprintf("%s-%d", l.prefix, l.seq.Add(1)))
				sleepCtx(stop, pause)
			}
		})
	}
	wg.Wait()
}

// Accepted returns a copy of what the API accepted.
func (l *loader) Accepted() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]string, len(l.accepted))
	for k, v := range l.accepted {
		m[k] = v
	}
	return m
}

// Slowest is the longest wait for an answer so far.
func (l *loader) Slowest() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slowest
}

// Statuses returns the answers by status, for logs.
func (l *loader) Statuses() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[int]int, len(l.statuses))
	for k, v := range l.statuses {
		m[k] = v
	}
	return m
}

// waitDelivered waits until the partner answered every accepted event,
// then checks the Idempotency-Keys and returns the count.
func waitDelivered(t *testing.T, p *partner, accepted map[string]string, timeout time.Duration) count {
	t.Helper()
	eventually(t, timeout, func() bool { return p.delivered(accepted) == len(accepted) }, func() string {
		c := p.check(accepted)
		return fmt.Sprintf("%d of %d accepted events delivered; missing %s", len(accepted)-len(c.Missing), len(accepted), sample(c.Missing))
	})
	c := p.check(accepted)
	if len(c.WrongKey) > 0 {
		t.Errorf("requests with an Idempotency-Key other than the delivery id: %s", sample(c.WrongKey))
	}
	return c
}

func sample(s []string) string {
	sort.Strings(s)
	if len(s) > 5 {
		return strings.Join(s[:5], ", ") + fmt.Sprintf(" and %d more", len(s)-5)
	}
	return strings.Join(s, ", ")
}
