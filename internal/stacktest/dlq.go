package stacktest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postbackhq/postback/internal/event"
)

// EnqueueMany enqueues n events named name, with ids prefix-0 … prefix-(n-1),
// through the stack's Client from several goroutines, and returns the
// delivery ids, in no particular order.
func (s *Stack) EnqueueMany(t testing.TB, prefix, name string, n int) []string {
	t.Helper()
	const workers = 16
	var (
		next atomic.Int64
		mu   sync.Mutex
		ids  = make([]string, 0, n)
		wg   sync.WaitGroup
		errc = make(chan error, workers)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ev := &event.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Name: name}
				rc, err := s.Client.Enqueue(context.Background(), ev)
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				for _, d := range rc.Deliveries {
					ids = append(ids, d.ID)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return ids
}

// WaitDLQSize waits until partner's dead-letter queue holds n entries, or
// fails after timeout.
func (s *Stack) WaitDLQSize(t testing.TB, partner string, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		size, err := s.Store.DLQSizeAll(context.Background(), partner)
		if err == nil && size == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dlq %s: want %d entries within %v, have %d (err %v)", partner, n, timeout, size, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitQueuesEmpty waits until no delivery is pending, in flight or
// scheduled, or fails after timeout.
func (s *Stack) WaitQueuesEmpty(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p, a, sc, r, _ := s.QueueSizes(t)
		if p+a+sc+r == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queues: want empty within %v, have pending %d, active %d, scheduled %d, retry %d", timeout, p, a, sc, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
