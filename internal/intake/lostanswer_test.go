package intake_test

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
)

// cutProxy forwards TCP to a Redis server. The first time the client
// sends bytes holding cutAt, it forwards them, lets Redis run them, then
// drops both connections without passing the answer on: a write that
// landed and whose answer was lost, as a timeout or a broken connection
// leaves it. Later connections pass everything.
type cutProxy struct {
	ln    net.Listener
	cutAt []byte
	cut   atomic.Bool
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string, cutAt []byte) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, cutAt: cutAt}
	p.wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			p.wg.Go(func() { p.pipe(client, server) })
		}
	})
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cutProxy) pipe(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	var dropping atomic.Bool // this connection's answers are not passed on
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && !dropping.Load() {
				if _, err := client.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			cutting := bytes.Contains(buf[:n], p.cutAt) && p.cut.CompareAndSwap(false, true)
			if cutting {
				dropping.Store(true)
			}
			if _, err := server.Write(buf[:n]); err != nil {
				return
			}
			if cutting {
				time.Sleep(100 * time.Millisecond) // Redis runs the writes
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// clientOn returns a Client with clientYAML on a Redis client for opt.
func clientOn(t *testing.T, opt *redis.Options) (*intake.Client, *redis.Client) {
	t.Helper()
	o := *opt // go-redis keeps the options it is given
	rdb := redis.NewClient(&o)
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := intake.NewClient(intake.ClientConfig{Redis: rdb, Config: config.NewLive(stacktest.Config(t, clientYAML))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, rdb
}

// TestClient_Enqueue_lostAnswerIsNotADuplicate: when the answer to an
// event's claim is lost after Redis stored it, go-redis sends the claim
// again, which then finds itself. The event is still new: answered
// accepted, not as a duplicate of itself, and its task stored.
func TestClient_Enqueue_lostAnswerIsNotADuplicate(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	for _, batch := range []bool{false, true} {
		name := map[bool]string{false: "single", true: "batch"}[batch]
		t.Run(name, func(t *testing.T) {
			srv := redistest.Own(t, redistest.Options{})
			opt, err := redis.ParseURL(srv.URL(0))
			require.NoError(t, err)
			id := "evt-lost-" + name
			proxy := newCutProxy(t, opt.Addr, []byte(store.EventKey(id)))
			opt.Addr = proxy.ln.Addr().String()
			c, _ := clientOn(t, opt)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ev := &event.Event{ID: id, Name: "install", Attribution: event.Attribution{Partner: "acme_ads"}}
			var rc *intake.Receipt
			if batch {
				res := c.EnqueueBatch(ctx, []*event.Event{ev})
				require.NoError(t, res[0].Err)
				rc = res[0].Receipt
			} else {
				rc, err = c.Enqueue(ctx, ev)
				require.NoError(t, err)
			}
			require.True(t, proxy.cut.Load(), "the claim's answer was cut")
			require.False(t, rc.Duplicate, "a first-time event answered as a duplicate of itself")
			require.Len(t, rc.Deliveries, 3) // acme_ads, everyone, big_spenders skipped

			direct, err := store.OpenRedis(srv.URL(0))
			require.NoError(t, err)
			t.Cleanup(func() { _ = direct.Close() })
			n, err := direct.Exists(ctx, store.EventKey(id)).Result()
			require.NoError(t, err)
			require.EqualValues(t, 1, n, "the claim is stored")

			// A real repeat is still a duplicate.
			again, err := c.Enqueue(ctx, ev)
			require.NoError(t, err)
			require.True(t, again.Duplicate)
			require.Equal(t, rc.Deliveries, again.Deliveries)
		})
	}
}

// TestClient_EnqueueBatch_lostAnswerOfABundle: when the answer to a
// bundle's enqueue is lost after Redis stored it, go-redis sends it again
// and it conflicts with itself: the batch is still accepted, and the
// bundle is stored once.
func TestClient_EnqueueBatch_lostAnswerOfABundle(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	srv := redistest.Own(t, redistest.Options{})
	opt, err := redis.ParseURL(srv.URL(0))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A first bundle, straight to Redis, loads the scripts: then the cut
	// one runs by EVALSHA at once, rather than after a NOSCRIPT answer.
	warm, direct := clientOn(t, opt)
	for _, res := range warm.EnqueueBatch(ctx, []*event.Event{{ID: "warm-0", Name: "sign_up"}, {ID: "warm-1", Name: "sign_up"}}) {
		require.NoError(t, res.Err)
	}
	require.NoError(t, direct.FlushDB(ctx).Err())
	proxy := newCutProxy(t, opt.Addr, []byte(wire.TypeDeliverBundle))
	opt.Addr = proxy.ln.Addr().String()
	c, rdb := clientOn(t, opt)

	evs := []*event.Event{{ID: "lost-b0", Name: "sign_up"}, {ID: "lost-b1", Name: "sign_up"}, {ID: "lost-b2", Name: "sign_up"}}
	for i, res := range c.EnqueueBatch(ctx, evs) {
		require.NoError(t, res.Err, "event %d", i)
		require.False(t, res.Receipt.Duplicate)
	}
	require.True(t, proxy.cut.Load(), "the bundle's answer was lost")
	tasks, err := asynq.NewInspectorFromRedisClient(rdb).ListPendingTasks(wire.QueueDefault)
	require.NoError(t, err)
	require.Len(t, tasks, 1, "one bundle")
	ids, err := wire.TaskDeliveries(tasks[0].Type, tasks[0].Payload)
	require.NoError(t, err)
	require.Len(t, ids, 3)
}
