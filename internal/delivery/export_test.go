package delivery

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/store"

	"github.com/postbackhq/postback/internal/wire"
)

// SetQueue replaces where h hands a bundle's deliveries off to (tests of a
// hand-off that fails).
func (h *Handler) SetQueue(q *asynq.Client) { h.queue = q }

// BeforeBundled makes h call f with each bundled delivery's event id just
// before its attempt (tests of a panic in a bundle).
func (h *Handler) BeforeBundled(f func(eventID string)) {
	h.beforeBundled = func(pl *wire.Payload) { f(pl.Event.ID) }
}

// ReleaseLater is releaseLater; after runs after its first release that
// works, before the one releaseSettle later.
func ReleaseLater(ctx context.Context, st *store.Store, id, token string, after func()) {
	afterRelease = after
	defer func() { afterRelease = func() {} }()
	releaseLater(ctx, st, id, token)
}
