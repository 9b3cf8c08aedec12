package store

import (
	"context"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// AutoPipeline sends the commands that concurrent callers issue on one
// client as Redis pipelines: while one pipeline is on the wire, the
// commands that arrive queue up and leave together in the next. An
// event's claim, task and mark are one round trip each and every event
// waits for its own, but the server and the client then pay one read and
// one write per pipeline rather than per command, which is where intake
// spends its time (syscalls, not Lua). Nothing waits for a batch to fill:
// a lone command leaves at once.
type AutoPipeline struct {
	// RDB is the client to use: its commands join the pipelines. On a
	// Redis Cluster each pipeline is split by node, as go-redis's
	// cluster pipelines are, and the commands to one node keep their
	// order.
	RDB    redis.UniversalClient
	lanes  []chan *pipedCmd // one per flusher
	next   atomic.Uint32    // round robin over lanes for unordered commands
	done   chan struct{}    // closed by Close: flushers stop
	closed chan struct{}    // closed at the end of Close: nothing runs commands any more
	wg     sync.WaitGroup

	closeOnce sync.Once
}

type pipedCmd struct {
	ctx  context.Context
	cmd  redis.Cmder
	sent chan struct{}
}

// maxPiped bounds the commands of one pipeline.
const maxPiped = 256

// NewAutoPipeline returns a client on the same server and options as rdb
// whose commands go out as pipelines, run by flushers connections. With
// deadlines, a command's context deadline also bounds its socket reads
// (go-redis's ContextTimeoutEnabled).
func NewAutoPipeline(rdb *redis.Client, flushers int, deadlines bool) *AutoPipeline {
	opt := *rdb.Options()
	opt.PoolSize = max(opt.PoolSize, flushers+2)
	opt.ContextTimeoutEnabled = deadlines
	// The options' maintenance-notification config is rdb's own; a second
	// client may not register its handlers again.
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return newAutoPipeline(redis.NewClient(&opt), flushers)
}

// NewClusterAutoPipeline is NewAutoPipeline for a Redis Cluster: a client
// on the same nodes and options as cc whose commands leave as cluster
// pipelines, one per node in each.
func NewClusterAutoPipeline(cc *redis.ClusterClient, flushers int, deadlines bool) *AutoPipeline {
	opt := *cc.Options()
	opt.PoolSize = max(opt.PoolSize, flushers+2)
	opt.ContextTimeoutEnabled = deadlines
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return newAutoPipeline(redis.NewClusterClient(&opt), flushers)
}

// newAutoPipeline hooks c, a client of its own, and starts its flushers.
func newAutoPipeline(c redis.UniversalClient, flushers int) *AutoPipeline {
	a := &AutoPipeline{RDB: c, done: make(chan struct{}), closed: make(chan struct{})}
	c.AddHook(a)
	for range flushers {
		lane := make(chan *pipedCmd, maxPiped)
		a.lanes = append(a.lanes, lane)
		a.wg.Go(func() { a.flush(lane) })
	}
	return a
}

func (a *AutoPipeline) flush(in chan *pipedCmd) {
	batch := make([]*pipedCmd, 0, maxPiped)
	for {
		select {
		case <-a.done:
			return
		case p := <-in:
			batch = append(batch[:0], p)
		}
	more:
		for len(batch) < maxPiped {
			select {
			case p := <-in:
				batch = append(batch, p)
			default:
				break more
			}
		}
		// The pipeline's context is not any one caller's: a caller that
		// gives up must not fail the others' commands. It runs until the
		// latest of its callers' deadlines (none if one caller has none),
		// so a paused Redis costs callers their deadline, not go-redis's
		// timeouts and retries.
		ctx, cancel := batchContext(batch)
		_, _ = a.RDB.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, p := range batch {
				_ = pipe.Process(p.ctx, p.cmd)
			}
			return nil
		})
		cancel()
		for _, p := range batch {
			close(p.sent)
		}
	}
}

// batchContext is a context that ends at the latest deadline of the
// batch's callers, or never when one of them has none.
func batchContext(batch []*pipedCmd) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			return context.Background(), func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}

// DialHook implements redis.Hook.
func (a *AutoPipeline) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook implements redis.Hook: pipelines go out as they are.
func (a *AutoPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook implements redis.Hook: a single command joins the next
// pipeline and returns when its answer is in.
func (a *AutoPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		switch cmd.Name() {
		case "hello", "auth", "select", "client", "readonly", "cluster", "command":
			// go-redis sets up a new connection with these, through the
			// hooks, from inside a flusher's pipeline: queueing them
			// behind that pipeline would wait for itself.
			return next(ctx, cmd)
		}
		a.Send(ctx, cmd)()
		return cmd.Err()
	}
}

// orderKey is the context key of an ordering key (see inOrder).
type orderKey struct{}

// InOrder returns a context whose commands, through an autoPipeline, reach
// Redis in the order they were issued, with every other command issued
// under the same key: they all take the same flusher.
func InOrder(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, orderKey{}, key)
}

// lane picks the flusher of a command: by its ordering key, or round robin.
func (a *AutoPipeline) lane(ctx context.Context) chan *pipedCmd {
	if len(a.lanes) == 1 {
		return a.lanes[0]
	}
	if k, ok := ctx.Value(orderKey{}).(string); ok {
		h := fnv.New32a()
		_, _ = h.Write([]byte(k))
		return a.lanes[h.Sum32()%uint32(len(a.lanes))]
	}
	return a.lanes[a.next.Add(1)%uint32(len(a.lanes))]
}

// Send queues cmd for the next pipeline and returns at once, with a wait
// that returns when cmd has its answer (or error). Commands sent one after
// the other under the same ordering key (inOrder) go out in that order.
func (a *AutoPipeline) Send(ctx context.Context, cmd redis.Cmder) (wait func()) {
	p := &pipedCmd{ctx: ctx, cmd: cmd, sent: make(chan struct{})}
	select {
	case a.lane(ctx) <- p:
	case <-a.done:
		cmd.SetErr(redis.ErrClosed)
		return func() {}
	case <-ctx.Done():
		cmd.SetErr(ctx.Err())
		return func() {}
	}
	return func() {
		select {
		case <-p.sent:
		case <-a.closed:
			// Queued after Close drained the queue: it never went out,
			// and no flusher will touch it.
			if !isClosed(p.sent) {
				cmd.SetErr(redis.ErrClosed)
			}
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// any is a lane holding a queued command, or nil (which never delivers).
func (a *AutoPipeline) any() chan *pipedCmd {
	for _, l := range a.lanes {
		if len(l) > 0 {
			return l
		}
	}
	return nil
}

// Close stops the flushers and closes the client. A second Close does
// nothing.
func (a *AutoPipeline) Close() error {
	var err error
	a.closeOnce.Do(func() { err = a.close() })
	return err
}

func (a *AutoPipeline) close() error {
	close(a.done)
	a.wg.Wait()
	// Commands queued after the last flush never went out.
	for {
		select {
		case p := <-a.any():
			p.cmd.SetErr(redis.ErrClosed)
			close(p.sent)
		default:
			close(a.closed)
			return a.RDB.Close()
		}
	}
}

// DefaultFlushers is how many pipelines an AutoPipeline keeps in flight, for intake and for the workers. An
// event's commands all take the same one (see InOrder), so that its tasks
// travel right behind its claim (see intake).
const DefaultFlushers = 2
