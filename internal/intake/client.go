package intake

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// ErrUnavailable wraps a failure to store an event: Redis is unreachable,
// failing or did not answer in time. The outcome is unknown: a write that
// Redis did not confirm may still have been stored. Repeat the event with
// the same id; a repeat of a stored event is answered as its duplicate.
var ErrUnavailable = errors.New("redis unavailable (the event may have been stored: repeat it with the same id)")

// ErrNotReplicated is, along with ErrUnavailable, the error of an event
// that the Redis master stored but fewer than api.wait_replicas replicas
// acknowledged in time (see Client.Enqueue). Repeating it is safe: it is
// answered as a duplicate once replicated, or stored again if a failover
// lost it.
var ErrNotReplicated = errors.New("not on enough Redis replicas")

// ClientConfig configures a Client.
type ClientConfig struct {
	// Redis is where events are stored. Required.
	Redis redis.UniversalClient
	// Config is the config in force (partners, dedup window). Required.
	Config *config.Live
	// Now is the clock; default time.Now.
	Now func() time.Time
	// BatchConcurrency is how many deliveries of one EnqueueBatch are
	// stored at once. Default 64.
	BatchConcurrency int
	// NoAutoPipeline sends every command on its own round trip. By
	// default, on a single Redis server, the commands of concurrent
	// Enqueue calls leave together as pipelines on the Client's own
	// connections (same address and options as Redis).
	NoAutoPipeline bool
	// BundleSize is how many deliveries to the same partner, of events
	// enqueued together (EnqueueBatch, or concurrent Enqueue calls stored
	// in one group commit), may share one asynq task (see
	// TypeDeliverBundle). Default DefaultBundleSize; 1 gives every
	// delivery its own task.
	BundleSize int
	// NoGroupCommit stores each Enqueue call's event on its own. By
	// default, the events of concurrent calls that arrive while earlier
	// ones are being stored are stored together, as a batch would be
	// (see Enqueue).
	NoGroupCommit bool

	// Tracer makes a span for each event's intake, whose traceparent the
	// event's tasks carry. Default nil: no tracing.
	Tracer *tracing.Tracer
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
	pipe  *store.AutoPipeline // nil when commands go straight to cfg.Redis
	repl  *replWaiter         // api.wait_replicas
	group *committer          // nil with NoGroupCommit
	wake  *waker              // tells idle workers of stored deliveries
	// previous is redis.previous_shards when it differs from the shards
	// placed into, else 0 (see previousClaims).
	previous int
}

// CheckWaitReplicas reports why cfg's api.wait_replicas cannot work on
// rdb, or nil. On Redis Cluster each master replicates on its own, which
// one WAIT cannot cover: every event would be answered 503. Call it on a
// config before putting it in force (a reload), as NewClient does at start.
func CheckWaitReplicas(rdb redis.UniversalClient, cfg *config.Config) error {
	if _, ok := rdb.(*redis.ClusterClient); ok && cfg.API.WaitReplicas > 0 {
		return errors.New("api.wait_replicas is not supported on Redis Cluster (WAIT covers one master's writes); use a single server or Sentinel, or set it to 0")
	}
	return nil
}

// NewClient returns a Client. Close it when done.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Redis == nil || cfg.Config == nil {
		return nil, errors.New("intake: ClientConfig needs Redis and Config")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchConcurrency <= 0 {
		cfg.BatchConcurrency = DefaultBatchConcurrency
	}
	if cfg.BundleSize <= 0 {
		cfg.BundleSize = DefaultBundleSize
	}
	cfg.BundleSize = min(cfg.BundleSize, MaxBatch)
	if err := CheckWaitReplicas(cfg.Redis, cfg.Config.Load()); err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	c := &Client{cfg: cfg}
	rdb := cfg.Redis
	// On a single server (or a Sentinel-managed one) concurrent enqueues
	// share pipelines; a Redis Cluster client keeps its per-slot routing.
	if single, ok := cfg.Redis.(*redis.Client); ok && !cfg.NoAutoPipeline {
		// Intake answers within its callers' deadlines (the API's
		// StoreTimeout): a pipeline's deadline must bound its socket reads.
		c.pipe = store.NewAutoPipeline(single, store.DefaultFlushers, true)
		rdb = c.pipe.RDB
	}
	rc := cfg.Config.Load().Redis
	c.store, c.queue = store.NewLayout(rdb, rc.Placed(), rc.Served()), asynq.NewClientFromRedisClient(rdb)
	c.previous = rc.Previous()
	c.repl = &replWaiter{store: c.store}
	if !cfg.NoGroupCommit {
		c.group = newCommitter(c, GroupCommits)
	}
	c.wake = &waker{store: store.New(cfg.Redis), now: time.Now} // real time: Now may be a test's fixed clock
	return c, nil
}

// Close releases the client's own connections (not the Redis client it
// was given).
func (c *Client) Close() error {
	if c.group != nil {
		c.group.close()
	}
	if c.pipe != nil {
		return c.pipe.Close()
	}
	return nil
}

// Receipt is the answer to Enqueue.
type Receipt struct {
	EventID    string          `json:"event_id"`
	Duplicate  bool            `json:"duplicate,omitempty"`
	Deliveries []wire.Delivery `json:"deliveries"`
	// Warnings name the optional fields dropped from the event because
	// their values were invalid once normalised (see event.Normalize): the
	// event was stored without them. A duplicate has none: the event's
	// claim keeps the first receipt's deliveries only, and nothing of the
	// repeat is stored.
	Warnings []event.Warning `json:"warnings,omitempty"`
}

// Enqueue stores ev and enqueues its deliveries. The same event id within
// the dedup window returns the first receipt with Duplicate set and never
// sends twice. When Enqueue returns an error wrapping ErrUnavailable, the
// outcome is unknown; repeating the call is safe.
//
// ev is validated and normalised in place (event.Normalize) before it is
// routed: what is stored is ev as Enqueue leaves it. An optional field
// still invalid then is dropped and named in the receipt's Warnings, or,
// with api.strict, refused with a *FieldError.
//
// On a single Redis server a new event costs one round trip: its claim (one
// SET NX GET holding the receipt) and then its tasks leave in the same
// pipeline. Enqueue answers only after both, so an accepted event is stored
// whole. A repeat, or an event with skipped deliveries, takes one or two
// more. On Redis Cluster the claim goes first, then the tasks.
//
// Concurrent calls share their writes: the events that arrive while
// earlier ones are being stored are then stored together, in one round
// trip for their claims and one for their tasks, and their deliveries to
// one partner share bundle tasks, as EnqueueBatch's do. A call that finds
// nothing under way is stored at once; none waits for others to arrive.
// ClientConfig.NoGroupCommit turns this off.
//
// With api.wait_replicas set, Enqueue also waits until that many replicas
// have the event's writes (one more round trip, see store.WaitReplicas),
// and returns an error wrapping ErrUnavailable when they do not in time.
func (c *Client) Enqueue(ctx context.Context, ev *event.Event) (*Receipt, error) {
	ctx, span := c.cfg.Tracer.Intake(ctx)
	in, err := c.prepare(ev, c.cfg.Config.Load())
	if err == nil {
		in.tp = span.TraceParent()
		if c.group != nil {
			err = c.group.enqueue(ctx, in)
		} else {
			err = c.enqueueAll(ctx, []*incoming{in})[0]
		}
	}
	endIntake(span, in, err)
	if err != nil {
		return nil, err
	}
	return in.rc, nil
}

// replicated waits, when cfg asks for it (api.wait_replicas), until that
// many replicas have every write made so far, so that a failover to one of
// them keeps what is about to be answered as stored. events are the ids
// of the events to answer: their claims must be on the master that
// answers the wait. Every failure wraps ErrNotReplicated too: the writes
// themselves were answered.
func (c *Client) replicated(ctx context.Context, cfg *config.Config, events ...string) error {
	n := cfg.API.WaitReplicas
	if n <= 0 || len(events) == 0 {
		return nil
	}
	timeout := cmp.Or(cfg.API.WaitTimeout, config.DefaultWaitTimeout)
	keys := make([]string, len(events))
	for i, id := range events {
		keys[i] = c.store.ClaimKey(id)
	}
	a, err := c.repl.wait(ctx, n, timeout, keys)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w: stored on the Redis master, but waiting for %d replica(s) failed: %v", ErrUnavailable, ErrNotReplicated, n, err)
	case !a.present:
		return fmt.Errorf("%w: %w: the Redis master that answered the wait does not have the event (a failover moved the master meanwhile)", ErrUnavailable, ErrNotReplicated)
	case a.acked < n:
		return fmt.Errorf("%w: %w: stored on the Redis master, but %d of %d replicas acknowledged it within %s (api.wait_replicas); "+
			"a repeat is answered as a duplicate, or stores it again if a failover lost it", ErrUnavailable, ErrNotReplicated, a.acked, n, timeout)
	}
	return nil
}

// incoming is one event on its way in.
type incoming struct {
	ev  *event.Event
	cfg *config.Config
	now time.Time
	rc  *Receipt
	// claim is the receipt's deliveries as stored in the event's claim.
	claim []byte
	// routes are the deliveries still to store: all of them for a new
	// event; for a duplicate, those of the first receipt that were never
	// taken up (dropRecorded).
	routes []config.Route
	// tp is the traceparent of the event's intake span, for its tasks.
	tp string
	// shards is the number of shards its deliveries are placed among:
	// 0 for the layout in force, redis.previous_shards for a repeat of an
	// event accepted before it (see previousClaims).
	shards int
}

// prepare validates, normalises and routes ev on cfg; it needs no Redis.
// It is where every way in (the API, the Go client, postback enqueue)
// checks an event.
func (c *Client) prepare(ev *event.Event, cfg *config.Config) (*incoming, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	warnings, err := ev.Normalize(cfg.API.Strict)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	if ev.Timestamp.IsZero() {
		ev.Timestamp = now.UTC()
	}
	routes := config.Routes(cfg.Partners, ev)
	rc := &Receipt{EventID: ev.ID, Deliveries: make([]wire.Delivery, len(routes)), Warnings: warnings}
	for i, r := range routes {
		d := wire.Delivery{ID: r.DeliveryID, Partner: r.Partner.ID, Status: retry.StatusQueued}
		if r.Skip != "" {
			d.Status, d.Reason = retry.StatusSkipped, r.Skip
		}
		rc.Deliveries[i] = d
	}
	return &incoming{ev: ev, cfg: cfg, now: now, rc: rc, claim: wire.EncodeClaim(rc.Deliveries), routes: routes}, nil
}

// decide reads the claim's answer. A duplicate answers the first receipt,
// whatever this call routed, and its routes become the first receipt's
// deliveries: a repeat never adds a delivery the first call did not
// promise. It answers no warnings: the claim does not keep the first
// call's (its format stays as small as it is), and this call's are about
// an event that is not stored.
//
// A claim byte for byte the one this call was writing (nonce included) is
// its own: a write whose answer was lost (a timeout, a dropped connection)
// and that go-redis sent again. The first write landed; the event is new.
// A caller's own repeat makes a claim with a nonce of its own.
func (in *incoming) decide(claim store.Claim) error {
	if claim.New || bytes.Equal(claim.Deliveries, in.claim) {
		return nil
	}
	in.rc.Duplicate, in.rc.Warnings = true, nil
	ds, err := wire.DecodeClaim(in.ev.ID, claim.Deliveries)
	if err != nil {
		return fmt.Errorf("stored deliveries of %s: %w", in.ev.ID, err)
	}
	in.rc.Deliveries = ds
	in.routes = in.routes[:0]
	for _, d := range in.rc.Deliveries {
		if p := in.cfg.Partner(d.Partner); p != nil {
			in.routes = append(in.routes, config.Route{Partner: p, DeliveryID: d.ID, Skip: d.Reason})
		}
	}
	return nil
}

// dropRecorded keeps, of each duplicate's routes, the deliveries that have
// no record, in one round trip for all of them.
//
// The first call may have died between its claim and its tasks, so a
// duplicate stores again what the first receipt promised. A delivery with
// no record was never taken up by a worker: its task is still queued (the
// enqueue then conflicts on the task id) or was never stored. A delivery
// with a record was taken up, skipped or dead-lettered, and must not get
// another task: one being replayed from the DLQ has its task in the replay
// queue, where a task id conflict in the default queue would not see it.
// Records outlive claims (config validation holds attempt_log_retention to
// at least dedup_window), so "no record" cannot mean "record expired".
func (c *Client) dropRecorded(ctx context.Context, ins []*incoming) error {
	var ids []string
	var shards []int
	for _, in := range ins {
		if in.rc.Duplicate {
			for _, r := range in.routes {
				ids, shards = append(ids, r.DeliveryID), append(shards, c.shardOf(in, r).Index())
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	recorded, err := c.store.RecordedAt(ctx, shards, ids)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for _, in := range ins {
		if !in.rc.Duplicate {
			continue
		}
		keep := in.routes[:0]
		for _, r := range in.routes {
			if !recorded[0] {
				keep = append(keep, r)
			}
			recorded = recorded[1:]
		}
		in.routes = keep
	}
	return nil
}

// storeRoute stores one delivery: its skip record, or its task. A task
// that exists already (a repeat of an event whose task is still queued)
// conflicts on its id, which is success.
func (c *Client) storeRoute(ctx context.Context, in *incoming, r config.Route) error {
	m := store.Meta{ID: r.DeliveryID, Partner: r.Partner.ID, EventID: in.ev.ID}
	st := c.shardOf(in, r)
	if r.Skip != "" {
		if err := st.SetStatus(ctx, m, retry.StatusSkipped, r.Skip, in.now, in.cfg.Delivery.AttemptLogRetention); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return nil
	}
	ctx = store.InOrder(ctx, in.ev.ID) // behind the event's claim (see enqueueAll)
	pl := in.payload(r)
	task, err := wire.NewTask(pl, r.Partner.AttemptTimeout(), wire.Queue(st.Index()))
	if err != nil {
		return err
	}
	if err := c.lifecycle(ctx, st, in, r, pl.Order, r.DeliveryID); err != nil {
		return err
	}
	_, err = c.queue.EnqueueContext(ctx, task, enqueueOptions(r.Partner)...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("%w: enqueue %s: %v", ErrUnavailable, r.DeliveryID, err)
	}
	return nil
}

// payload is what delivery r of the event carries in its task.
func (in *incoming) payload(r config.Route) *wire.Payload {
	pl := &wire.Payload{Delivery: r.DeliveryID, Partner: r.Partner.ID, Enqueued: in.now.UnixMilli(), Event: r.Partner.Stored(in.ev), TraceParent: in.tp}
	if v := orderValue(r.Partner, in.ev); v != "" {
		pl.Order = store.Seq(v)
	}
	return pl
}

// storeBundle enqueues the deliveries rs, all to one partner, as one
// bundle task (see TypeDeliverBundle).
func (c *Client) storeBundle(ctx context.Context, ins []*incoming, rs []bundled) error {
	pls := make([]*wire.Payload, len(rs))
	for k, b := range rs {
		pls[k] = ins[b.in].payload(b.r)
	}
	// A bundle's deliveries share a shard (see storeAll).
	st := c.shardOf(ins[rs[0].in], rs[0].r)
	task, err := wire.NewBundleTask(pls, rs[0].r.Partner.AttemptTimeout(), wire.Queue(st.Index()))
	if err != nil {
		return err
	}
	// The bundle's places in their sequences, in one round trip.
	var joins []store.Join
	bundleID := wire.BundleID(pls)
	for k, b := range rs {
		if pls[k].Order != "" {
			joins = append(joins, store.Join{Seq: st.OrderKey(b.r.Partner.ID, pls[k].Order), ID: b.r.DeliveryID, TaskID: bundleID})
		}
	}
	if len(joins) > 0 {
		if err := st.OrderJoinAll(ctx, joins, ins[rs[0].in].cfg.Delivery.AttemptLogRetention); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	if rs[0].r.Partner.CancelOnReject {
		for _, b := range rs {
			if err := c.hold(ctx, st, ins[b.in], b.r); err != nil {
				return err
			}
		}
	}
	// A conflict is this very bundle, sent again by go-redis after a lost
	// answer: it is stored.
	if _, err := c.queue.EnqueueContext(ctx, task, enqueueOptions(rs[0].r.Partner)...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("%w: enqueue a bundle of %d deliveries to %s: %v", ErrUnavailable, len(rs), rs[0].r.Partner.ID, err)
	}
	return nil
}

// DefaultBundleSize is ClientConfig.BundleSize's default.
const DefaultBundleSize = 50
