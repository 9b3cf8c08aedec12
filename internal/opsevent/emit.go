package opsevent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/store"
)

// QueueOps is the asynq queue of operational events.
const QueueOps = "postback_ops"

// Task types.
const (
	// TypeSend posts one event to one webhook.
	TypeSend = "postback:ops:send"
	// TypeGather gathers a partner's dead letters of one minute into one
	// dlq.dead_lettered event.
	TypeGather = "postback:ops:gather"
)

// MaxRetry is how often a send is retried before asynq archives it: with
// the backoff (2 s doubling to 10 min), about two days.
const MaxRetry = 300

// DLQWindow is the minute whose dead letters of one partner make one
// dlq.dead_lettered event.
const DLQWindow = time.Minute

// dlqWindow is DLQWindow, shortened by tests.
var dlqWindow = DLQWindow

// sendPayload is a TypeSend task's payload. The webhook is named by a hash
// of its URL, so that no secret, and not the URL, is stored in the queue;
// a webhook removed from the config since gets nothing.
type sendPayload struct {
	Hook  string          `json:"hook"`
	Event json.RawMessage `json:"event"`
}

type gatherPayload struct {
	Partner string `json:"partner"`
	From    int64  `json:"from"` // Unix ms
}

// HookKey names a webhook by its URL.
func HookKey(url string) string {
	h := sha256.Sum256([]byte(url))
	return hex.EncodeToString(h[:8])
}

// Emitter enqueues events for the config's webhooks.
type Emitter struct {
	live  *config.Live
	queue *asynq.Client
	store *store.Store
	log   *slog.Logger
	now   func() time.Time
}

// NewEmitter returns an Emitter on rdb, for the webhooks of the config in
// force at each event.
func NewEmitter(rdb redis.UniversalClient, live *config.Live, log *slog.Logger) *Emitter {
	if log == nil {
		log = slog.Default()
	}
	return &Emitter{live: live, queue: asynq.NewClientFromRedisClient(rdb), store: store.New(rdb), log: log, now: time.Now}
}

// Enabled reports whether events go anywhere.
func (e *Emitter) Enabled() bool { return e != nil && len(e.live.Load().Ops.Webhooks) > 0 }

// Emit enqueues ev for every webhook. An event already enqueued (the same
// id, from another worker or an earlier call) is not enqueued twice.
func (e *Emitter) Emit(ctx context.Context, ev Event) error {
	if !e.Enabled() {
		return nil
	}
	body, err := ev.Body()
	if err != nil {
		return err
	}
	var errs []error
	for _, w := range e.live.Load().Ops.Webhooks {
		key := HookKey(w.URL)
		pl, _ := json.Marshal(sendPayload{Hook: key, Event: body})
		_, err := e.queue.EnqueueContext(ctx, asynq.NewTask(TypeSend, pl),
			asynq.Queue(QueueOps), asynq.TaskID(ev.ID+":"+key), asynq.MaxRetry(MaxRetry),
			asynq.Timeout(time.Minute), asynq.Retention(24*time.Hour))
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, asynq.ErrDuplicateTask) {
			errs = append(errs, fmt.Errorf("enqueue %s event for %s: %w", ev.Type, key, err))
		}
	}
	return errors.Join(errs...)
}

// Go emits ev in the background, so that the caller (a delivery) waits
// for no Redis round trip; a failure is logged.
func (e *Emitter) Go(ev Event) {
	if !e.Enabled() {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Emit(ctx, ev); err != nil {
			e.log.Warn("operational event not enqueued", "type", ev.Type, "partner", ev.Data.Partner, "id", ev.ID, "err", err)
		}
	}()
}

// Failing is partner.failing: cause "circuit_open" or
// "auto_pause_half_way", since when.
func Failing(partner, cause string, since time.Time, fails, threshold int) Event {
	return New(TypeFailing, partner, ms(since), since, Data{Cause: cause, ConsecutiveFailures: fails, AutoPauseAfter: threshold})
}

// Recovered is partner.recovered: the first success after failing since.
func Recovered(partner string, since, now time.Time) Event {
	return New(TypeRecovered, partner, ms(since), now, Data{FailingSince: at(since)})
}

// Paused is partner.paused for the pause that began at since.
func Paused(partner, reason, by string, since time.Time, fails, threshold int) Event {
	return New(TypePaused, partner, ms(since), since, Data{Reason: reason, By: by, Since: at(since),
		ConsecutiveFailures: fails, AutoPauseAfter: threshold})
}

// Resumed is partner.resumed, at now.
func Resumed(partner, by string, now time.Time) Event {
	return New(TypeResumed, partner, ms(now), now, Data{By: by})
}

// DeadLettered notes that partner has a new dead letter, dead at at. The
// first of a minute (of the clock) schedules the gathering of that
// minute's letters into one dlq.dead_lettered event, sent when the minute
// is over; the others cost one SET NX. It runs in the background, as Go
// does.
func (e *Emitter) DeadLettered(partner string, at time.Time) {
	if !e.Enabled() {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.deadLettered(ctx, partner, at); err != nil {
			e.log.Warn("dlq.dead_lettered event not scheduled", "partner", partner, "err", err)
		}
	}()
}

// gatherSlack is how long after its minute a gathering waits for the
// letters of the minute still being written.
const gatherSlack = 2 * time.Second

func (e *Emitter) deadLettered(ctx context.Context, partner string, at time.Time) error {
	start := at.Truncate(dlqWindow)
	first, err := e.store.ClaimDLQMinute(ctx, partner, start, dlqWindow)
	if err != nil || !first {
		return err
	}
	pl, _ := json.Marshal(gatherPayload{Partner: partner, From: start.UnixMilli()})
	_, err = e.queue.EnqueueContext(ctx, asynq.NewTask(TypeGather, pl),
		asynq.Queue(QueueOps), asynq.TaskID(ID(TypeDeadLettered, partner, ms(start))),
		asynq.ProcessAt(start.Add(dlqWindow+gatherSlack)), asynq.MaxRetry(MaxRetry), asynq.Timeout(time.Minute))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}
