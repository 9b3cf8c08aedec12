package dispatcher

import "github.com/hibiken/asynq"

// SetQueue replaces where h hands a bundle's deliveries off to (tests of a
// hand-off that fails).
func (h *Handler) SetQueue(q *asynq.Client) { h.queue = q }
