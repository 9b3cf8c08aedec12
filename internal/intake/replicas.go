package intake

import (
	"context"
	"sync"
	"time"

	"github.com/postbackhq/postback/internal/store"
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
	keys    []string // must be on the master the round runs on
	done    chan replAck
}

type replAck struct {
	acked   int
	present bool // keys were on the round's master
	err     error
}

// wait returns how many replicas have every write answered before the
// call, waiting up to timeout for n of them, and whether keys were on the
// master that answered (see store.WaitReplicas).
func (w *replWaiter) wait(ctx context.Context, n int, timeout time.Duration, keys []string) (replAck, error) {
	r := replWait{n: n, timeout: timeout, keys: keys, done: make(chan replAck, 1)}
	w.mu.Lock()
	w.pending = append(w.pending, r)
	if !w.running {
		w.running = true
		go w.rounds()
	}
	w.mu.Unlock()
	select {
	case a := <-r.done:
		return a, a.err
	case <-ctx.Done():
		return replAck{}, ctx.Err()
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
		witnesses := make([][]string, len(batch))
		for i, r := range batch {
			n, timeout = max(n, r.n), max(timeout, r.timeout)
			witnesses[i] = r.keys
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Second)
		acked, present, err := w.store.WaitReplicas(ctx, n, timeout, witnesses)
		cancel()
		for i, r := range batch {
			a := replAck{acked: acked, err: err}
			if err == nil {
				a.present = present[i]
			}
			r.done <- a
		}
	}
}
