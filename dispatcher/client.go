package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/dispatcher/store"
)

// ErrUnavailable wraps a failure to store an event: Redis is unreachable or
// failing. Nothing was accepted; the caller should retry later.
var ErrUnavailable = errors.New("redis unavailable")

// ClientConfig configures a Client.
type ClientConfig struct {
	// Redis is where events are stored. Required.
	Redis redis.UniversalClient
	// Config is the config in force (partners, dedup window). Required.
	Config *Live
	// Now is the clock; default time.Now.
	Now func() time.Time
	// BatchConcurrency is how many events of one EnqueueBatch are stored at
	// once. Default 64.
	BatchConcurrency int
	// NoAutoPipeline sends every command on its own round trip. By
	// default, on a single Redis server, the commands of concurrent
	// Enqueue calls leave together as pipelines on the Client's own
	// connections (same address and options as Redis).
	NoAutoPipeline bool
}

// DefaultBatchConcurrency is the default of ClientConfig.BatchConcurrency.
const DefaultBatchConcurrency = 64

// Client enqueues events: it validates, de-duplicates and routes each one,
// and enqueues one delivery task per partner. It is what the HTTP API uses,
// and what Go backends use to enqueue straight to Redis. Safe for
// concurrent use.
type Client struct {
	cfg   ClientConfig
	store *store.Store
	queue *asynq.Client
	pipe  *autoPipeline // nil when commands go straight to cfg.Redis
}

// NewClient returns a Client. Close it when done.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Redis == nil || cfg.Config == nil {
		return nil, errors.New("dispatcher: ClientConfig needs Redis and Config")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchConcurrency <= 0 {
		cfg.BatchConcurrency = DefaultBatchConcurrency
	}
	c := &Client{cfg: cfg}
	rdb := cfg.Redis
	// On a single server (or a Sentinel-managed one) concurrent enqueues
	// share pipelines; a Redis Cluster client keeps its per-slot routing.
	if single, ok := cfg.Redis.(*redis.Client); ok && !cfg.NoAutoPipeline {
		c.pipe = newAutoPipeline(single, autoPipelineFlushers)
		rdb = c.pipe.rdb
	}
	c.store, c.queue = store.New(rdb), asynq.NewClientFromRedisClient(rdb)
	return c, nil
}

// autoPipelineFlushers is how many pipelines a Client keeps in flight.
const autoPipelineFlushers = 2

// Close releases the client's own connections (not the Redis client it
// was given).
func (c *Client) Close() error {
	if c.pipe != nil {
		return c.pipe.Close()
	}
	return nil
}

// Delivery is one partner an accepted event goes to.
type Delivery struct {
	ID      string `json:"id"`
	Partner string `json:"partner"`
	// Status is "queued", or "skipped" with Reason.
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Receipt is the answer to Enqueue.
type Receipt struct {
	EventID    string     `json:"event_id"`
	Duplicate  bool       `json:"duplicate,omitempty"`
	Deliveries []Delivery `json:"deliveries"`
}

// Enqueue stores ev and enqueues its deliveries. The same event id within
// the dedup window returns the first receipt with Duplicate set and never
// sends twice. When Enqueue returns an error wrapping ErrUnavailable,
// nothing was accepted and the call may be repeated safely.
func (c *Client) Enqueue(ctx context.Context, ev *Event) (*Receipt, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = c.cfg.Now().UTC()
	}
	cfg := c.cfg.Config.Load()
	routes := Routes(cfg.Partners, ev)
	rc := &Receipt{EventID: ev.ID, Deliveries: make([]Delivery, len(routes))}
	for i, r := range routes {
		d := Delivery{ID: r.DeliveryID, Partner: r.Partner.ID, Status: "queued"}
		if r.Skip != "" {
			d.Status, d.Reason = "skipped", r.Skip
		}
		rc.Deliveries[i] = d
	}
	b, err := json.Marshal(rc.Deliveries)
	if err != nil {
		return nil, err
	}
	claim, err := c.store.ClaimEvent(ctx, ev.ID, b, cfg.API.DedupWindow)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !claim.New {
		rc.Duplicate = true
		rc.Deliveries = nil // decode fresh: reusing elements would keep stale fields
		if err := json.Unmarshal(claim.Deliveries, &rc.Deliveries); err != nil {
			return nil, fmt.Errorf("stored deliveries of %s: %w", ev.ID, err)
		}
		if claim.Complete {
			return rc, nil
		}
		// The first call may have failed half way: make sure every
		// delivery it recorded is enqueued. Tasks that exist conflict on
		// their id; tasks that already ran find their record final and
		// send nothing.
		routes = routes[:0]
		for _, d := range rc.Deliveries {
			if p := cfg.Partner(d.Partner); p != nil {
				routes = append(routes, Route{Partner: p, DeliveryID: d.ID, Skip: d.Reason})
			}
		}
	}
	now := c.cfg.Now()
	for _, r := range routes {
		if err := c.enqueueRoute(ctx, cfg, ev, r, now); err != nil {
			return nil, err
		}
	}
	if err := c.store.MarkEventEnqueued(ctx, ev.ID); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return rc, nil
}

func (c *Client) enqueueRoute(ctx context.Context, cfg *Config, ev *Event, r Route, now time.Time) error {
	m := store.Meta{ID: r.DeliveryID, Partner: r.Partner.ID, EventID: ev.ID}
	if r.Skip != "" {
		if err := c.store.SetStatus(ctx, m, store.StatusSkipped, r.Skip, now, cfg.Delivery.AttemptLogRetention); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return nil
	}
	pl := &payload{Delivery: r.DeliveryID, Partner: r.Partner.ID, Enqueued: now.UnixMilli(), Event: ev.redactedFor(r.Partner)}
	task, err := newTask(pl, r.Partner, QueueDefault)
	if err != nil {
		return err
	}
	_, err = c.queue.EnqueueContext(ctx, task)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("%w: enqueue %s: %v", ErrUnavailable, r.DeliveryID, err)
	}
	return nil
}
