package delivery

import (
	"github.com/hibiken/asynq"

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
