package intake

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// committer stores the events of concurrent Enqueue calls together: a
// group commit. An event that finds no commit under way is stored at
// once, alone, as before; the events that arrive while commits are under
// way wait for a free one and then share it, as one batch: one round trip
// for all their claims and one for their tasks, and their deliveries to
// the same partner share bundle tasks. Nothing waits for company: a
// group is whatever queued up while the commits before it ran, so a
// lone event pays one channel hand-off, and under load the groups grow
// with the load.
//
// Every call is still answered only once its own event is stored (or
// refused); the group shares the writes, not the answers.
type committer struct {
	c     *Client
	reqs  chan *commitReq
	slots chan struct{} // one per commit under way
	stop  chan struct{}
	wg    sync.WaitGroup

	mu     sync.RWMutex // held to queue a call; closed under it
	closed bool

	waiting atomic.Int64 // calls queued and not yet answered
}

type commitReq struct {
	ctx  context.Context
	in   *incoming
	done chan error // buffered: the committer never waits for a caller
}

// GroupCommits is how many group commits may be under way at once, and
// maxGroup the most events one takes.
const (
	GroupCommits = 2
	maxGroup     = 256
)

func newCommitter(c *Client, slots int) *committer {
	g := &committer{c: c, reqs: make(chan *commitReq, maxGroup), slots: make(chan struct{}, slots), stop: make(chan struct{})}
	g.wg.Go(g.run)
	return g
}

// enqueue stores in along with whatever else is waiting, and returns its
// outcome. A caller whose ctx ends first gets ErrUnavailable: its event
// may still be stored, and a repeat is safe.
func (g *committer) enqueue(ctx context.Context, in *incoming) error {
	r := &commitReq{ctx: ctx, in: in, done: make(chan error, 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return g.c.enqueueAll(ctx, []*incoming{in})[0]
	}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		g.mu.RUnlock()
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
	g.mu.RUnlock()
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

func (g *committer) run() {
	var next *commitReq // taken from reqs, for the next group
	for {
		if next == nil {
			select {
			case next = <-g.reqs:
			case <-g.stop:
				// Callers still queued are answered before Close returns.
				select {
				case next = <-g.reqs:
				default:
					return
				}
			}
		}
		g.slots <- struct{}{}
		// The events that queued up while every commit was busy join.
		group := []*commitReq{next}
		next = nil
	gather:
		for len(group) < maxGroup {
			select {
			case r := <-g.reqs:
				if r.in.cfg != group[0].in.cfg { // a reload between them
					next = r
					break gather
				}
				group = append(group, r)
			default:
				break gather
			}
		}
		g.wg.Go(func() {
			defer func() { <-g.slots }()
			g.commit(group)
		})
	}
}

// commit stores a group under a context of its own: one caller giving up
// must not fail the others' writes. It ends at the group's latest
// deadline, if every caller has one.
func (g *committer) commit(group []*commitReq) {
	ins := make([]*incoming, len(group))
	var until time.Time
	bounded := true
	for i, r := range group {
		ins[i] = r.in
		d, ok := r.ctx.Deadline()
		bounded = bounded && ok
		if d.After(until) {
			until = d
		}
	}
	ctx := context.WithoutCancel(group[0].ctx)
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, until)
		defer cancel()
	}
	errs := g.c.enqueueAll(ctx, ins)
	for i, r := range group {
		r.done <- errs[i]
	}
}

// close stops taking events once those queued are stored.
func (g *committer) close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.stop)
	}
	g.mu.Unlock()
	g.wg.Wait()
}
