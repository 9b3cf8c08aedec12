package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
)

// PartnerStats is one partner's line of `postback stats`. The JSON names
// are part of the CLI's contract.
type PartnerStats struct {
	Partner string `json:"partner"`
	// Pending deliveries wait in a queue, ready to run.
	Pending int `json:"pending"`
	// Scheduled deliveries wait for a retry (or a deferral) to come due.
	Scheduled int `json:"scheduled"`
	// InFlight deliveries are being attempted right now.
	InFlight int `json:"in_flight"`
	// Held deliveries wait out the partner's delay before their first
	// attempt (they are not counted in Scheduled).
	Held int64 `json:"held"`
	// Delivered1h and Dead1h count deliveries that ended delivered or in
	// the DLQ in the last hour; Attempts1h counts attempts.
	Delivered1h int64 `json:"delivered_1h"`
	Dead1h      int64 `json:"dead_1h"`
	Attempts1h  int64 `json:"attempts_1h"`
	// Duplicate1h counts deliveries that ended final because the partner
	// answered that it had the conversion already (a responses rule);
	// they are not in Delivered1h.
	Duplicate1h int64 `json:"duplicate_1h"`
	// Skipped1h counts deliveries skipped on purpose in the last hour;
	// SkippedBy1h those of the lifecycle rules by reason
	// (outside_window, duplicate_conversion, rejected_before_send).
	Skipped1h   int64            `json:"skipped_1h"`
	SkippedBy1h map[string]int64 `json:"skipped_by_1h,omitempty"`
	// SuccessRate is (Delivered1h + Duplicate1h) / (Delivered1h +
	// Duplicate1h + Dead1h); nil when all are 0.
	SuccessRate *float64 `json:"success_rate"`
	// LatencyP50 and LatencyP99 are attempt durations in milliseconds over
	// the last hour's most recent attempts (up to store.LatencySamples);
	// nil without attempts.
	LatencyP50 *float64 `json:"latency_p50_ms"`
	LatencyP99 *float64 `json:"latency_p99_ms"`
	// DLQSize is the number of dead letters waiting.
	DLQSize int64 `json:"dlq_size"`
	// OldestPendingAge is the age in seconds of the oldest delivery still
	// in the queues (pending, scheduled or in flight), counted from its
	// enqueue (or its replay); nil when there is none.
	OldestPendingAge *float64 `json:"oldest_pending_age_s"`
	// Paused is the partner's pause in force; nil when it is not paused.
	Paused *Pause `json:"paused"`
}

// Stats is the answer of ReadStats.
type Stats struct {
	At       time.Time      `json:"at"`
	Partners []PartnerStats `json:"partners"`
	// Truncated is true when the queues held more tasks than StatsScanLimit
	// per state and the queue figures count only the first ones.
	Truncated bool `json:"truncated,omitempty"`
	// Shards has each shard's figures, with more than one (redis.shards or
	// redis.previous_shards): a shard is drained when all its figures are 0.
	Shards []ShardStats `json:"shards,omitempty"`
}

// ShardStats is what one shard holds: its deliveries in its queues (new
// and replays) and its dead letters.
type ShardStats struct {
	Shard     int    `json:"shard"`
	Queue     string `json:"queue"`
	Pending   int    `json:"pending"`
	Scheduled int    `json:"scheduled"` // held, retries and deferrals
	InFlight  int    `json:"in_flight"`
	DLQSize   int64  `json:"dlq_size"`
}

// StatsScanLimit bounds how many tasks per queue and state ReadStats reads
// to split the queue figures by partner.
const StatsScanLimit = 200_000

// ReadStats reads the figures of `postback stats` for every partner in cfg
// and every partner with dead letters, or for partner alone when it is
// not "".
//
// The queue figures come from asynq's queues, whose tasks are shared by
// all partners: ReadStats reads them (up to StatsScanLimit per state) and
// splits them by partner. The hourly figures are per-minute counters the
// worker keeps; the latencies a capped sample of recent attempts.
func ReadStats(ctx context.Context, rdb redis.UniversalClient, cfg *config.Config, partner string, now time.Time) (*Stats, error) {
	st := store.NewSharded(rdb, cfg.Redis.Served())
	var ids []string
	if partner != "" {
		ids = []string{partner}
	} else {
		for _, p := range cfg.Partners {
			ids = append(ids, p.ID)
		}
		dlq, err := st.DLQPartnersAll(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range dlq {
			if !slices.Contains(ids, p) {
				ids = append(ids, p)
			}
		}
		slices.Sort(ids)
	}
	paused, err := Paused(ctx, rdb)
	if err != nil {
		return nil, err
	}
	out := &Stats{At: now.UTC(), Partners: make([]PartnerStats, len(ids))}
	byID := make(map[string]*PartnerStats, len(ids))
	for i, id := range ids {
		ps := &out.Partners[i]
		ps.Partner = id
		byID[id] = ps
		if p, ok := paused[id]; ok {
			ps.Paused = &p
		}
		c, err := st.CountsAll(ctx, id, now, time.Hour)
		if err != nil {
			return nil, err
		}
		ps.Delivered1h, ps.Dead1h, ps.Attempts1h, ps.Duplicate1h = c.Delivered, c.Dead, c.Attempts, c.Duplicate
		ps.Skipped1h, ps.SkippedBy1h = c.Skipped, c.SkippedBy
		if ok := c.Delivered + c.Duplicate; ok+c.Dead > 0 {
			r := float64(ok) / float64(ok+c.Dead)
			ps.SuccessRate = &r
		}
		lat, err := st.LatenciesAll(ctx, id, now.Add(-time.Hour))
		if err != nil {
			return nil, err
		}
		if len(lat) > 0 {
			p50, p99 := ms(quantile(lat, 0.50)), ms(quantile(lat, 0.99))
			ps.LatencyP50, ps.LatencyP99 = &p50, &p99
		}
		if ps.DLQSize, err = st.DLQSizeAll(ctx, id); err != nil {
			return nil, err
		}
	}
	var shards []ShardStats
	if st.Shards() > 1 {
		shards = make([]ShardStats, st.Shards())
		for k, sh := range st.All() {
			shards[k].Shard, shards[k].Queue = k, wire.Queue(k)
			ps, err := sh.DLQPartners(ctx)
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				n, err := sh.DLQSize(ctx, p)
				if err != nil {
					return nil, err
				}
				shards[k].DLQSize += n
			}
		}
	}
	truncated, err := scanQueues(ctx, rdb, cfg, now, byID, shards)
	if err != nil {
		return nil, err
	}
	out.Truncated, out.Shards = truncated, shards
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// quantile returns the q-quantile of ds (nearest rank); ds is sorted in
// place.
func quantile(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// scanQueues splits the delivery queues' pending, scheduled, retry and
// active tasks by partner into byID, counting each delivery of a bundle.
//
// A scheduled task due no later than its partner's delay after its first
// enqueue is held by that delay; the other scheduled tasks wait for a
// retry or a deferral.
//
// shards, when not nil, receives each shard's counts of deliveries (of
// every partner).
func scanQueues(ctx context.Context, rdb redis.UniversalClient, cfg *config.Config, now time.Time, byID map[string]*PartnerStats, shards []ShardStats) (truncated bool, err error) {
	insp := asynq.NewInspectorFromRedisClient(rdb)
	const page = 1000
	type lister func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error)
	held := func(p *PartnerStats, t *asynq.TaskInfo, enqueued int64) bool {
		pc := cfg.Partner(p.Partner)
		return pc != nil && pc.Delay > 0 && enqueued > 0 &&
			!t.NextProcessAt.After(time.UnixMilli(enqueued).Add(pc.Delay+time.Second))
	}
	states := []struct {
		list  lister
		shard func(s *ShardStats, deliveries int)
		add   func(p *PartnerStats, t *asynq.TaskInfo, enqueued int64, deliveries int)
	}{
		{insp.ListPendingTasks, func(s *ShardStats, n int) { s.Pending += n }, func(p *PartnerStats, _ *asynq.TaskInfo, _ int64, n int) { p.Pending += n }},
		{insp.ListScheduledTasks, func(s *ShardStats, n int) { s.Scheduled += n }, func(p *PartnerStats, t *asynq.TaskInfo, enqueued int64, n int) {
			if held(p, t, enqueued) {
				p.Held += int64(n)
			} else {
				p.Scheduled += n
			}
		}},
		{insp.ListRetryTasks, func(s *ShardStats, n int) { s.Scheduled += n }, func(p *PartnerStats, _ *asynq.TaskInfo, _ int64, n int) { p.Scheduled += n }},
		{insp.ListActiveTasks, func(s *ShardStats, n int) { s.InFlight += n }, func(p *PartnerStats, _ *asynq.TaskInfo, _ int64, n int) { p.InFlight += n }},
	}
	oldest := map[string]int64{}
	for _, q := range wire.Queues(cfg.Redis.Served()) {
		var sh *ShardStats
		if k, _, _ := wire.QueueShard(q); k < len(shards) {
			sh = &shards[k]
		}
		for _, s := range states {
			for n := 1; ; n++ {
				if err := ctx.Err(); err != nil {
					return truncated, err
				}
				if (n-1)*page >= StatsScanLimit {
					truncated = true
					break
				}
				tasks, err := s.list(q, asynq.PageSize(page), asynq.Page(n))
				if errors.Is(err, asynq.ErrQueueNotFound) {
					break
				}
				if err != nil {
					return truncated, fmt.Errorf("read queue %s: %w", q, err)
				}
				for _, t := range tasks {
					partner, enqueued, n, ok := wire.TaskHead(t.Type, t.Payload)
					if ok && sh != nil {
						s.shard(sh, n)
					}
					ps := byID[partner]
					if !ok || ps == nil {
						continue
					}
					s.add(ps, t, enqueued, n)
					if o, ok := oldest[partner]; enqueued > 0 && (!ok || enqueued < o) {
						oldest[partner] = enqueued
					}
				}
				if len(tasks) < page {
					break
				}
			}
		}
	}
	for id, t := range oldest {
		age := max(now.Sub(time.UnixMilli(t)), 0).Seconds()
		byID[id].OldestPendingAge = &age
	}
	return truncated, nil
}
