package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/wire"
)

// DLQConfig configures a DLQ.
type DLQConfig struct {
	// Redis holds the queues. Required.
	Redis redis.UniversalClient
	// Config is the config in force: replays re-render with the partners'
	// current templates. Required.
	Config *config.Live
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Tracer makes a span for each Replay, whose traceparent the replayed
	// tasks carry. Default nil: no tracing.
	Tracer *tracing.Tracer
}

// DLQ is the ops view of the per-partner dead-letter queues: list, show,
// export, purge and replay. Dead letters are written by the Handler; only
// Purge and Replay remove them.
type DLQ struct {
	cfg   DLQConfig
	store *store.Store
	queue *asynq.Client
}

// NewDLQ returns a DLQ.
func NewDLQ(cfg DLQConfig) (*DLQ, error) {
	if cfg.Redis == nil || cfg.Config == nil {
		return nil, errors.New("ops: DLQConfig needs Redis and Config")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Every shard workers serve is read, draining ones included.
	st := store.NewSharded(cfg.Redis, cfg.Config.Load().Redis.Served())
	return &DLQ{cfg: cfg, store: st, queue: asynq.NewClientFromRedisClient(cfg.Redis)}, nil
}

// Store returns the store the DLQ reads.
func (d *DLQ) Store() *store.Store { return d.store }

// DeadLetter is one dead letter as ops see it: the delivery record (reason,
// last status and error, attempts, first and last attempt, URL last sent,
// when it died) and the event it carries.
type DeadLetter struct {
	*store.Record
	Event *event.Event `json:"event"`
}

func newDeadLetter(dl *store.DeadLetter) (*DeadLetter, *wire.Payload) {
	out := &DeadLetter{Record: dl.Record}
	pl, err := wire.DecodePayload(dl.Payload)
	if err != nil {
		return out, nil
	}
	out.Event = pl.Event
	return out, pl
}

// List returns the dead letters q selects, newest first.
func (d *DLQ) List(ctx context.Context, q store.DeadQuery) ([]*DeadLetter, error) {
	dls, err := d.store.ListDeadAll(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]*DeadLetter, len(dls))
	for i, dl := range dls {
		out[i], _ = newDeadLetter(dl)
	}
	return out, nil
}

// Show returns dead letter id and its whole attempt history, or an error
// wrapping store.ErrNotFound when id is not in a DLQ.
func (d *DLQ) Show(ctx context.Context, id string) (*DeadLetterDetail, error) {
	dl, st, err := d.store.GetDeadLetterAny(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("dead letter %s: %w", id, err)
	}
	attempts, err := st.Attempts(ctx, id)
	if err != nil {
		return nil, err
	}
	out, _ := newDeadLetter(dl)
	return &DeadLetterDetail{DeadLetter: out, History: attempts}, nil
}

// Selection says which dead letters an operation acts on: IDs, or every
// dead letter of Partner, or All of them; narrowed by when they died.
type Selection struct {
	IDs     []string
	Partner string
	All     bool
	// Group selects one failure group of Triage (Partner, if set, is the
	// group's partner).
	Group string
	// Since keeps those that died within this long before now; 0 = any.
	Since time.Duration
	// OlderThan keeps those that died more than this long ago; 0 = any.
	OlderThan time.Duration
}

// ErrNoSelection is returned for a Selection with neither IDs, Partner
// nor All.
var ErrNoSelection = errors.New("select dead letters by id, partner or all")

// resolve returns the selected dead letters by partner, oldest first
// across shards, and the partners in a stable order.
func (d *DLQ) resolve(ctx context.Context, sel Selection) ([]string, map[string][]store.Dead, error) {
	now := d.cfg.Now()
	var from, to time.Time
	if sel.Since > 0 {
		from = now.Add(-sel.Since)
	}
	if sel.OlderThan > 0 {
		to = now.Add(-sel.OlderThan)
	}
	byPartner := map[string][]store.Dead{}
	var order []string
	add := func(p string, ids ...store.Dead) {
		if _, ok := byPartner[p]; !ok {
			order = append(order, p)
		}
		byPartner[p] = append(byPartner[p], ids...)
	}
	switch {
	case sel.Group != "":
		p, ids, err := d.groupIDs(ctx, sel.Partner, sel.Group, sel.Since)
		if err != nil {
			return nil, nil, err
		}
		add(p, ids...)
	case len(sel.IDs) > 0:
		for _, id := range sel.IDs {
			dl, st, err := d.store.GetDeadLetterAny(ctx, id)
			if err != nil {
				return nil, nil, fmt.Errorf("dead letter %s: %w", id, err)
			}
			if (!from.IsZero() && dl.DeadAt.Before(from)) || (!to.IsZero() && dl.DeadAt.After(to)) {
				continue
			}
			add(dl.Partner, store.Dead{ID: id, Shard: st.Index(), At: dl.DeadAt})
		}
	case sel.Partner != "" || sel.All:
		partners := []string{sel.Partner}
		if sel.All {
			var err error
			if partners, err = d.store.DLQPartnersAll(ctx); err != nil {
				return nil, nil, err
			}
		}
		for _, p := range partners {
			ids, err := d.store.DeadAll(ctx, p, from, to)
			if err != nil {
				return nil, nil, err
			}
			if len(ids) > 0 {
				add(p, ids...)
			}
		}
	default:
		return nil, nil, ErrNoSelection
	}
	return order, byPartner, nil
}

// Purge removes the selected dead letters for good and returns how many
// it removed. Their records stay readable (status "purged") for the
// attempt log retention.
func (d *DLQ) Purge(ctx context.Context, sel Selection) (int, error) {
	order, byPartner, err := d.resolve(ctx, sel)
	if err != nil {
		return 0, err
	}
	retention := d.cfg.Config.Load().Delivery.AttemptLogRetention
	total := 0
	for _, p := range order {
		for _, part := range byShard(byPartner[p]) {
			n, err := d.store.Shard(part.shard).Purge(ctx, p, part.ids, d.cfg.Now(), retention)
			total += n
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// Export calls fn with each dead letter of partner ("" = every partner)
// and its attempts, oldest first per partner (across shards).
func (d *DLQ) Export(ctx context.Context, partner string, fn func(*DeadLetterDetail) error) error {
	order, byPartner, err := d.resolve(ctx, Selection{Partner: partner, All: partner == ""})
	if err != nil {
		return err
	}
	const batch = 500
	for _, p := range order {
		ids := byPartner[p]
		for len(ids) > 0 {
			chunk := ids[:min(batch, len(ids))]
			ids = ids[len(chunk):]
			got := map[string]*store.DeadLetter{}
			for _, part := range byShard(chunk) {
				dls, err := d.store.Shard(part.shard).GetDead(ctx, part.ids)
				if err != nil {
					return err
				}
				for _, dl := range dls {
					got[dl.ID] = dl
				}
			}
			for _, pick := range chunk {
				dl := got[pick.ID]
				if dl == nil {
					continue // no longer a dead letter
				}
				attempts, err := d.store.Shard(pick.Shard).Attempts(ctx, dl.ID)
				if err != nil {
					return err
				}
				out, _ := newDeadLetter(dl)
				if err := fn(&DeadLetterDetail{DeadLetter: out, History: attempts}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// Rate caps re-enqueues per second; 0 means no cap (the partner's own
	// rate_limit still paces the sends).
	Rate float64
	// DryRun renders each selected dead letter with the partner's current
	// template and reports it, changing nothing.
	DryRun bool
	// Progress, when set, is called with the number of dead letters
	// handled so far and the total selected.
	Progress func(done, total int)
	// OnItem, when set, is called for each dead letter handled.
	OnItem func(ReplayItem)
}

// ReplayItem is what Replay did with one dead letter.
type ReplayItem struct {
	ID      string `json:"id"`
	Partner string `json:"partner"`
	// Result is "enqueued", "would_send" (dry run), "render_error" (dry
	// run: the current template fails on it), "gone" (no longer a dead
	// letter) or "failed" (still in the DLQ; see Error).
	Result string `json:"result"`
	Method string `json:"method,omitempty"` // dry run
	URL    string `json:"url,omitempty"`    // dry run: the URL it would send now
	Error  string `json:"error,omitempty"`
}

// ReplayResult sums up a Replay.
type ReplayResult struct {
	Selected int `json:"selected"`
	Enqueued int `json:"enqueued"`
	// Removed counts dead letters that left the DLQ. A replayed delivery
	// that died again before the replay ended is enqueued but stays.
	Removed int `json:"removed"`
	Failed  int `json:"failed"`
	Gone    int `json:"gone"`
	// RenderErrors counts, in a dry run, dead letters the current template
	// still fails on.
	RenderErrors int `json:"render_errors,omitempty"`
}

// replayBatch is how many dead letters are claimed, enqueued and settled
// together.
const replayBatch = 200

// replayWorkers is how many enqueues of a batch run at once.
const replayWorkers = 8

// Replay re-enqueues the selected dead letters as fresh deliveries on
// QueueReplay: the same delivery id (so the same Idempotency-Key), the
// attempt count reset, and the enqueue time reset so that max_age starts
// again. The request is rendered when the delivery runs, from the
// partner's config at that time, so a fixed template fixes the replay.
//
// Each dead letter is first marked queued (still in the DLQ), then its task
// is enqueued, then it leaves the DLQ; a crash in between leaves it in the
// DLQ, where a later Replay picks it up again. Duplicates are possible
// that way, losses are not. A dead letter whose partner is no longer in the
// config is not replayed (Failed).
func (d *DLQ) Replay(ctx context.Context, sel Selection, o ReplayOptions) (ReplayResult, error) {
	ctx, span := d.cfg.Tracer.Replay(ctx, o.DryRun)
	res, partners, err := d.replay(ctx, sel, o)
	endReplay(span, partners, res, err)
	return res, err
}

// replay is Replay, which traces it; it also returns the partners whose
// dead letters were selected.
func (d *DLQ) replay(ctx context.Context, sel Selection, o ReplayOptions) (ReplayResult, []string, error) {
	var res ReplayResult
	order, byPartner, err := d.resolve(ctx, sel)
	if err != nil {
		return res, nil, err
	}
	for _, p := range order {
		res.Selected += len(byPartner[p])
	}
	var lim *rate.Limiter
	if o.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(o.Rate), max(1, int(o.Rate/10)))
	}
	done := 0
	step := func(it ReplayItem) {
		done++
		switch it.Result {
		case "enqueued":
			res.Enqueued++
		case "failed":
			res.Failed++
		case "gone":
			res.Gone++
		case "render_error":
			res.RenderErrors++
		}
		if o.OnItem != nil {
			o.OnItem(it)
		}
		if o.Progress != nil {
			o.Progress(done, res.Selected)
		}
	}
	cfg := d.cfg.Config.Load()
	for _, pid := range order {
		partner := cfg.Partner(pid)
		for _, part := range byShard(byPartner[pid]) {
			st, ids := d.store.Shard(part.shard), part.ids
			for len(ids) > 0 {
				chunk := ids[:min(replayBatch, len(ids))]
				ids = ids[len(chunk):]
				if partner == nil {
					for _, id := range chunk {
						step(ReplayItem{ID: id, Partner: pid, Result: "failed", Error: "partner " + pid + " is not in the config"})
					}
					continue
				}
				var n int
				if o.DryRun {
					err = d.dryRun(ctx, st, partner, chunk, step)
				} else {
					n, err = d.replayChunk(ctx, st, partner, chunk, lim, step)
				}
				res.Removed += n
				if err != nil {
					return res, order, err
				}
			}
		}
	}
	return res, order, nil
}

func (d *DLQ) dryRun(ctx context.Context, st *store.Store, p *config.Partner, ids []string, step func(ReplayItem)) error {
	dls, err := st.GetDead(ctx, ids)
	if err != nil {
		return err
	}
	found := make(map[string]bool, len(dls))
	for _, dl := range dls {
		found[dl.ID] = true
		it := ReplayItem{ID: dl.ID, Partner: p.ID, Result: "would_send"}
		_, pl := newDeadLetter(dl)
		if pl == nil {
			it.Result, it.Error = "failed", "unreadable payload"
		} else if req, err := p.Render(pl.Event, pl.Delivery, 1); err != nil {
			it.Result, it.Error = "render_error", err.Error()
		} else {
			it.Method, it.URL = req.Method, req.URL
		}
		step(it)
	}
	for _, id := range ids {
		if !found[id] {
			step(ReplayItem{ID: id, Partner: p.ID, Result: "gone"})
		}
	}
	return nil
}

// replayChunk claims, enqueues and settles one batch of partner p's dead
// letters in shard st, and returns how many left the DLQ. They are
// replayed in their shard: its replay queue, its records.
func (d *DLQ) replayChunk(ctx context.Context, st *store.Store, p *config.Partner, ids []string, lim *rate.Limiter, step func(ReplayItem)) (int, error) {
	now := d.cfg.Now()
	claims, err := st.ClaimReplay(ctx, p.ID, ids, now)
	if err != nil {
		return 0, err
	}
	// Enqueue the claimed ones a few at a time: each is one round trip.
	items := make([]ReplayItem, len(claims))
	ok := make([]bool, len(claims))
	sem := make(chan struct{}, replayWorkers)
	var wg sync.WaitGroup
	for i, c := range claims {
		items[i] = ReplayItem{ID: c.ID, Partner: p.ID, Result: "gone"}
		switch {
		case c.Err != nil:
			items[i].Result, items[i].Error = "failed", c.Err.Error()
		case c.Claimed:
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := d.enqueueReplay(ctx, wire.ReplayQueue(st.Index()), p, c.Payload, now, lim); err != nil {
					items[i].Result, items[i].Error = "failed", err.Error()
					return
				}
				items[i].Result, ok[i] = "enqueued", true
			}()
		}
	}
	wg.Wait()
	var claimed []string
	var enqueued []bool
	for i, c := range claims {
		if c.Claimed {
			claimed = append(claimed, c.ID)
			enqueued = append(enqueued, ok[i])
		}
	}
	// Settle even when cancelled, so claimed entries go back to dead.
	n, err := st.SettleReplay(context.WithoutCancel(ctx), p.ID, claimed, enqueued, d.cfg.Config.Load().Delivery.AttemptLogRetention)
	for _, it := range items {
		step(it)
	}
	if err != nil {
		return n, err
	}
	return n, ctx.Err()
}

func (d *DLQ) enqueueReplay(ctx context.Context, queue string, p *config.Partner, raw []byte, now time.Time, lim *rate.Limiter) error {
	pl, err := wire.DecodePayload(raw)
	if err != nil {
		return err
	}
	pl.Enqueued = now.UnixMilli() // max_age starts again
	if tp := tracing.TraceParentOf(ctx); tp != "" {
		pl.TraceParent = tp // its attempts link to the replay's span
	}
	task, err := wire.NewTask(pl, p.AttemptTimeout(), queue)
	if err != nil {
		return err
	}
	if lim != nil {
		if err := lim.Wait(ctx); err != nil {
			return err
		}
	}
	_, err = d.queue.EnqueueContext(ctx, task)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		// A task with this id is still queued (an earlier replay, or the
		// task that dead-lettered it is finishing): leave the dead letter
		// where it is rather than trust a task that may be about to go.
		return errors.New("a task for this delivery is still in the queue; retry later")
	}
	return err
}

// DeadLetterDetail is a dead letter with its whole attempt history: what
// `dlq show` and each line of `dlq export` print.
type DeadLetterDetail struct {
	*DeadLetter
	History []store.Attempt `json:"attempts_history"`
}

// MarshalJSON writes the history under its former name, attempt_log,
// too: scripts reading `-o json` have one release to move to
// attempts_history, the name the HTTP API uses.
func (d DeadLetterDetail) MarshalJSON() ([]byte, error) {
	type plain DeadLetterDetail
	return json.Marshal(struct {
		plain
		Former []store.Attempt `json:"attempt_log"`
	}{plain(d), d.History})
}

// shardPart is the ids of a selection in one shard.
type shardPart struct {
	shard int
	ids   []string
}

// byShard splits picks by shard, keeping their order inside each shard
// and the shards in the order first met.
func byShard(picks []store.Dead) []shardPart {
	var out []shardPart
	at := map[int]int{}
	for _, p := range picks {
		i, ok := at[p.Shard]
		if !ok {
			i = len(out)
			at[p.Shard] = i
			out = append(out, shardPart{shard: p.Shard})
		}
		out[i].ids = append(out[i].ids, p.ID)
	}
	return out
}
