package ops

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/opsevent"
	"github.com/postbackhq/postback/internal/store"
)

// ErrUnknownPartner is returned for a partner id that is not in the
// config: pausing it would hold nothing and look like success.
var ErrUnknownPartner = errors.New("unknown partner")

// Pause is a partner's pause in force, as the CLI and the HTTP API show
// it. The JSON names are part of their contract.
type Pause struct {
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by"` // "cli", "api" or "auto" (auto_pause)
}

// PausePartner pauses partner as of now: every worker holds its
// deliveries, within a second, without spending attempts or max_age,
// until ResumePartner. Pausing a paused partner keeps its start and takes
// the new reason.
func PausePartner(ctx context.Context, rdb redis.UniversalClient, cfg *config.Config, partner, reason, by string, now time.Time) (Pause, error) {
	if cfg.Partner(partner) == nil {
		return Pause{}, ErrUnknownPartner
	}
	pp, err := store.New(rdb).Pause(ctx, partner, reason, by, now)
	if err != nil {
		return Pause{}, err
	}
	if pp.Since.UnixMilli() == now.UnixMilli() { // a new pause, not a new reason
		emit(ctx, rdb, cfg, opsevent.Paused(partner, reason, by, pp.Since, 0, 0))
	}
	return Pause{Since: pp.Since.UTC(), Reason: pp.Reason, By: pp.By}, nil
}

// ResumePartner ends partner's pause; its held deliveries run again within
// seconds, paced by its rate_limit. It reports whether it was paused.
func ResumePartner(ctx context.Context, rdb redis.UniversalClient, cfg *config.Config, partner string, now time.Time) (bool, error) {
	if cfg.Partner(partner) == nil {
		return false, ErrUnknownPartner
	}
	was, err := store.New(rdb).Resume(ctx, partner, now)
	if err == nil && was {
		emit(ctx, rdb, cfg, opsevent.Resumed(partner, "", now))
	}
	return was, err
}

// emit enqueues ev for the config's ops webhooks. The pause or resume it
// reports is made already: a failure to enqueue is logged, not returned.
func emit(ctx context.Context, rdb redis.UniversalClient, cfg *config.Config, ev opsevent.Event) {
	if len(cfg.Ops.Webhooks) == 0 {
		return
	}
	if err := opsevent.NewEmitter(rdb, config.NewLive(cfg), nil).Emit(ctx, ev); err != nil {
		slog.Warn("operational event not enqueued", "type", ev.Type, "partner", ev.Data.Partner, "err", err)
	}
}

// Paused returns the pauses in force, by partner id.
func Paused(ctx context.Context, rdb redis.UniversalClient) (map[string]Pause, error) {
	all, err := store.New(rdb).Paused(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Pause, len(all))
	for id, pp := range all {
		if pp.Paused {
			out[id] = Pause{Since: pp.Since.UTC(), Reason: pp.Reason, By: pp.By}
		}
	}
	return out, nil
}
