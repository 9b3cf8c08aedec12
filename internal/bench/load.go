package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// eventJSON is the event every phase sends: a purchase attributed to the
// bench partner, with the fields a real one carries.
func eventJSON(b []byte, id string) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","name":"purchase","app_id":"com.example.game","click_id":"ck-`...)
	b = append(b, id...)
	b = append(b, `","attribution":{"partner":"bench","campaign_id":"c1","campaign":"winter"},`+
		`"device":{"idfa":"6D92078A-8246-4BA4-AE5B-76104861E7DC","ip":"203.0.113.7","os":"ios","os_version":"18.1","country":"US"},`+
		`"user":{"customer_user_id":"u1","email":"a@example.com"},"revenue":{"amount":"1.99","currency":"USD"},`+
		`"consent":{"granted":true},"params":{"level":"7"}}`...)
	return b
}

func (r *run) eventID(n int64) string { return r.prefix + strconv.FormatInt(n, 10) }

// post sends one event to the API and reports whether it was accepted.
func (r *run) post(ctx context.Context, id string) (bool, error) {
	body := eventJSON(make([]byte, 0, 640), id)
	code, _, err := r.do(ctx, "/v1/events", body)
	if err != nil {
		return false, err
	}
	if code != http.StatusAccepted && code != http.StatusOK {
		return false, fmt.Errorf("POST /v1/events: status %d", code)
	}
	return true, nil
}

// postBatch sends events first..first+n-1 in one batch request and returns
// how many were accepted.
func (r *run) postBatch(ctx context.Context, first int64, n int) (int, error) {
	b := make([]byte, 0, n*640)
	b = append(b, `{"events":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = eventJSON(b, r.eventID(first+int64(i)))
	}
	b = append(b, "]}"...)
	code, answer, err := r.do(ctx, "/v1/events/batch", b)
	if err != nil {
		return 0, err
	}
	if code == http.StatusNotFound || code == http.StatusMethodNotAllowed {
		return 0, errNoBatch
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("POST /v1/events/batch: status %d", code)
	}
	var out struct {
		Results []struct {
			Status string `json:"status"`
		} `json:"results"`
	}
	if err := json.Unmarshal(answer, &out); err != nil {
		return 0, fmt.Errorf("POST /v1/events/batch: %w", err)
	}
	accepted := 0
	for _, res := range out.Results {
		if res.Status == "accepted" || res.Status == "duplicate" {
			accepted++
		}
	}
	return accepted, nil
}

// errStop tells a producer that its work is done.
var errStop = errors.New("stop")

var errNoBatch = errors.New("the API has no /v1/events/batch")

func (r *run) do(ctx context.Context, path string, body []byte) (int, []byte, error) {
	return r.load.post(ctx, path, body)
}

// load is a set of producers that call send until they are stopped.
type load struct {
	seq      atomic.Int64 // next event number
	accepted atomic.Int64
	failed   atomic.Int64
	errMu    sync.Mutex
	firstErr error
}

// sendFunc sends one unit of work numbered from first (one event, or a
// batch) and returns how many events were accepted.
type sendFunc func(ctx context.Context, first int64) (int, error)

// drive runs clients producers calling send until ctx ends; each waits
// while hold returns true (backlog control). perCall is how many event
// numbers one call uses. A call under way when ctx ends is finished, not
// cut: cutting it would count as a failure what only the clock stopped.
func (l *load) drive(ctx context.Context, clients, perCall int, hold func() bool, send sendFunc) {
	stop := ctx
	ctx = context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for stop.Err() == nil {
				if hold != nil && hold() {
					time.Sleep(time.Millisecond)
					continue
				}
				first := l.seq.Add(int64(perCall)) - int64(perCall)
				n, err := send(ctx, first)
				l.accepted.Add(int64(n))
				if errors.Is(err, errStop) {
					return
				}
				if err != nil {
					l.failed.Add(1)
					l.errMu.Lock()
					if l.firstErr == nil {
						l.firstErr = err
					}
					l.errMu.Unlock()
					if errors.Is(err, errNoBatch) {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

func (l *load) err() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.firstErr
}

// windowRate runs fn (which produces load until its context ends) for
// warm+d and returns how much counter grew per second during d.
func windowRate(ctx context.Context, warm, d time.Duration, counter func() int64, fn func(context.Context)) float64 {
	rate, _ := windowCost(ctx, warm, d, counter, nil, fn)
	return rate
}

// windowCost is windowRate that also returns the CPU that cpu (when not
// nil) counts during d, per unit of counter.
func windowCost(ctx context.Context, warm, d time.Duration, counter func() int64, cpu func() cpuTimes, fn func(context.Context)) (float64, cpuTimes) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fn(ctx) }()
	defer func() { cancel(); <-done }()
	if !sleep(ctx, warm) {
		return 0, cpuTimes{}
	}
	var c0 cpuTimes
	if cpu != nil {
		c0 = cpu()
	}
	start, t0 := counter(), time.Now()
	if !sleep(ctx, d) {
		return 0, cpuTimes{}
	}
	n := counter() - start
	rate := float64(n) / time.Since(t0).Seconds()
	if cpu == nil || n == 0 {
		return rate, cpuTimes{}
	}
	c1 := cpu()
	per := cpuTimes{Process: (c1.Process - c0.Process) / time.Duration(n), Redis: -1}
	if c0.Redis >= 0 && c1.Redis >= 0 {
		per.Redis = (c1.Redis - c0.Redis) / time.Duration(n)
	}
	return rate, per
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || !sleep(ctx, 10*time.Millisecond) {
			return false
		}
	}
	return true
}
