package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/triage"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// This file is what the worker tells the outside: Prometheus observations
// and the redaction that keeps personal data out of logs.
//
// postback_delivery_attempts_total{outcome} counts every run of a delivery
// by what it came to: delivered, duplicate (a responses rule said the
// partner had it already), retry, rejected, blocked for a request sent;
// render, deferred, skipped for a run that sent nothing; and exhausted
// once when a delivery runs out of attempts or max_age (on top of its last
// "retry" attempt, if it had one).

// observeAttempt records one sent request: its outcome and HTTP duration.
func observeAttempt(partner string, o retry.Outcome, d time.Duration) {
	metrics.DeliveryAttempts.WithLabelValues(partner, o.String()).Inc()
	metrics.AttemptDuration.WithLabelValues(partner).Observe(d.Seconds())
}

// observeOutcome records a run that sent nothing (render, deferred,
// skipped) or a delivery that ran out of attempts (exhausted).
func observeOutcome(partner string, o retry.Outcome) {
	metrics.DeliveryAttempts.WithLabelValues(partner, o.String()).Inc()
}

// observeFinal records a delivery reaching a final state: delivered, dead
// or skipped. For delivered, first is when it was first enqueued.
func observeFinal(partner string, s retry.Status, first, now time.Time) {
	metrics.Deliveries.WithLabelValues(partner, string(s)).Inc()
	if s == retry.StatusDelivered && !first.IsZero() {
		metrics.EnqueueToDelivery.WithLabelValues(partner).Observe(max(now.Sub(first), 0).Seconds())
	}
}

// observeDuplicate records a delivery the partner said it had already:
// final, with result "duplicate" rather than "delivered".
func observeDuplicate(partner string) {
	metrics.Deliveries.WithLabelValues(partner, retry.Duplicate.String()).Inc()
}

// logHost is the part of a sent URL that logs may show: its host. The rest
// of a rendered URL (path and query), its headers and body carry click
// ids, device ids, emails, IPs and partner tokens; the attempt history in
// Redis keeps the full URL for `postback deliveries show`.
func logHost(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	return u.Host
}

// redactText redacts every URL inside s (an error or a reason such as
// "HTTP 302 redirect to https://…?email=…"), for logs: query values become
// "***" (triage.RedactText, which dead-letter samples use too).
func redactText(s string) string { return triage.RedactText(s) }

// statsLoop refreshes the gauges that describe Redis rather than this
// process (DLQ size per partner, queue pending) and the circuit gauges.
// Every worker process refreshes them; aggregate with max, not sum.
type statsLoop struct {
	rdb      redis.UniversalClient
	live     *config.Live
	gate     *Gate
	pauses   *Pauses // nil: no paused gauge
	insp     *asynq.Inspector
	shards   int // read in every shard up to this one
	interval time.Duration
	log      *slog.Logger

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

type statsLoopParams struct {
	Redis    redis.UniversalClient
	Live     *config.Live
	Gate     *Gate
	Pauses   *Pauses
	Interval time.Duration
	Logger   *slog.Logger
	// Shards is how many shards the worker serves; default 1.
	Shards int
}

func newStatsLoop(p statsLoopParams) *statsLoop {
	return &statsLoop{
		rdb: p.Redis, live: p.Live, gate: p.Gate, pauses: p.Pauses, interval: p.Interval, log: p.Logger, shards: max(p.Shards, 1),
		insp: asynq.NewInspectorFromRedisClient(p.Redis),
		stop: make(chan struct{}),
	}
}

func (l *statsLoop) start() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(l.interval)
		defer t.Stop()
		for {
			l.refreshLogged()
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (l *statsLoop) shutdown() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *statsLoop) refreshLogged() {
	ctx, cancel := context.WithTimeout(context.Background(), max(l.interval, 5*time.Second))
	defer cancel()
	if err := l.refresh(ctx); err != nil {
		l.log.Warn("metrics refresh failed", "err", err)
	}
}

// refresh reads the DLQ sizes and queue lengths from Redis into the gauges.
func (l *statsLoop) refresh(ctx context.Context) error {
	if l.gate != nil {
		partners := l.live.Load().Partners
		ids := make([]string, len(partners))
		for i, p := range partners {
			ids[i] = p.ID
		}
		l.gate.refreshCircuits(ids)
	}
	var errs []error
	if err := l.refreshDLQ(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := l.refreshPending(); err != nil {
		errs = append(errs, err)
	}
	l.refreshPaused()
	return errors.Join(errs...)
}

func (l *statsLoop) refreshDLQ(ctx context.Context) error {
	shards := store.NewSharded(l.rdb, l.shards).All()
	var partners []string
	for _, sh := range shards {
		ps, err := l.rdb.SMembers(ctx, sh.DLQPartnersKey()).Result()
		if err != nil {
			return fmt.Errorf("dlq partners: %w", err)
		}
		for _, p := range ps {
			if !slices.Contains(partners, p) {
				partners = append(partners, p)
			}
		}
	}
	for _, p := range l.live.Load().Partners {
		if !slices.Contains(partners, p.ID) {
			partners = append(partners, p.ID)
		}
	}
	// One ZCARD per partner and shard; the keys may sit on different
	// cluster nodes, which a pipeline of single-key commands handles.
	pipe := l.rdb.Pipeline()
	cards := make([][]*redis.IntCmd, len(partners))
	for i, p := range partners {
		cards[i] = make([]*redis.IntCmd, len(shards))
		for k, sh := range shards {
			cards[i][k] = pipe.ZCard(ctx, sh.DLQKey(p))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("dlq sizes: %w", err)
	}
	for i, p := range partners {
		var n int64
		for _, c := range cards[i] {
			n += c.Val()
		}
		metrics.DLQSize.WithLabelValues(p).Set(float64(n))
	}
	return nil
}

// refreshPaused sets each partner's paused gauge, 1 or 0, from the
// worker's copy of the pauses (refreshed every PauseInterval), not from
// another read of Redis.
func (l *statsLoop) refreshPaused() {
	if l.pauses == nil {
		return
	}
	for _, p := range l.live.Load().Partners {
		v := 0.0
		if l.pauses.Of(p.ID).Paused {
			v = 1
		}
		metrics.PartnerPaused.WithLabelValues(p.ID).Set(v)
	}
}

func (l *statsLoop) refreshPending() error {
	queues, err := l.insp.Queues()
	if err != nil {
		return fmt.Errorf("queues: %w", err)
	}
	var n int
	for _, q := range wire.Queues(l.shards) {
		if !slices.Contains(queues, q) {
			continue // no task ever went through it
		}
		info, err := l.insp.GetQueueInfo(q)
		if err != nil {
			return fmt.Errorf("queue %s: %w", q, err)
		}
		n += info.Pending + info.Scheduled + info.Retry
	}
	metrics.QueuePending.Set(float64(n))
	return nil
}

// checkPersistence reads Redis's persistence and eviction settings and
// returns a warning for each one that can lose accepted events. err is set
// when they cannot be read (CONFIG is often disabled on managed Redis).
func checkPersistence(ctx context.Context, rdb redis.UniversalClient) (warnings []string, err error) {
	get := func(name string) (string, error) {
		m, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return "", err
		}
		v, ok := m[name]
		if !ok {
			return "", fmt.Errorf("CONFIG GET %s: no value", name)
		}
		return v, nil
	}
	aof, err := get("appendonly")
	if err != nil {
		return nil, err
	}
	policy, err := get("maxmemory-policy")
	if err != nil {
		return nil, err
	}
	if aof != "yes" {
		warnings = append(warnings, fmt.Sprintf("Redis appendonly is %q: a Redis crash or restart loses the events and deliveries accepted since its last snapshot; set appendonly yes (appendfsync everysec)", aof))
	}
	if policy != "noeviction" {
		warnings = append(warnings, fmt.Sprintf("Redis maxmemory-policy is %q: when Redis fills up it evicts keys, silently dropping queued deliveries, retries and dead letters; set maxmemory-policy noeviction", policy))
	}
	return warnings, nil
}
