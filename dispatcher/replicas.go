package dispatcher

import (
	"context"
	"sync"
	"time"

	"github.com/postbackhq/postback/dispatcher/store"
)

// replWaiter coalesces the replica waits of concurrent enqueues (group
// commit): one round, one INCR and one WAIT on one connection, answers
// every caller that was waiting when the round began. A caller joins once
// its own writes are answered, so the round's write comes after them and
// its WAIT covers them. Rounds run one at a time: however many requests
// wait, WAIT holds one Redis connection, never the pool that intake's
// pipelines need.
type replWaiter struct {
	store *store.Store

	mu      sync.Mutex
	pending []replWait
	running bool
}

type replWait struct {
	n       int
	timeout time.Duration
	done    chan replAck
}

type replAck struct {
	acked int
	err   error
}

// wait returns how many replicas have every write answered before the
// call, waiting up to timeout for n of them (see store.WaitReplicas).
func (w *replWaiter) wait(ctx context.Context, n int, timeout time.Duration) (int, error) {
	r := replWait{n: n, timeout: timeout, done: make(chan replAck, 1)}
	w.mu.Lock()
	w.pending = append(w.pending, r)
	if !w.running {
		w.running = true
		go w.rounds()
	}
	w.mu.Unlock()
	select {
	case a := <-r.done:
		return a.acked, a.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// rounds runs rounds while callers wait.
func (w *replWaiter) rounds() {
	for {
		w.mu.Lock()
		batch := w.pending
		w.pending = nil
		if len(batch) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		n, timeout := 0, time.Duration(0)
		for _, r := range batch {
			n, timeout = max(n, r.n), max(timeout, r.timeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Second)
		acked, err := w.store.WaitReplicas(ctx, n, timeout)
		cancel()
		for _, r := range batch {
			r.done <- replAck{acked: acked, err: err}
		}
	}
}
