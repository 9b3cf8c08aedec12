package wire

import (
	"time"

	"github.com/hibiken/asynq"
)

// Task type and queue names, defined here and nowhere else.
const (
	// TypeDeliver is the asynq task type of one delivery.
	TypeDeliver = "postback:deliver"
	// QueueDefault carries new deliveries.
	QueueDefault = "postback"
	// QueueReplay carries deliveries replayed from a dead-letter queue, so a
	// large replay does not starve fresh conversions.
	QueueReplay = "postback_replay"
)

// TaskMaxRetry is asynq's retry limit on every delivery task. Our own retry
// policy decides when a delivery is exhausted and dead-letters it itself;
// this limit only has to stay out of the way (asynq's default of 25 would
// silently cap a partner's max_attempts, and an archived task would escape
// our DLQ). Deferrals do not count against it.
const TaskMaxRetry = 1 << 20

// TaskTimeoutSlack is added to a partner's timeout for the task's deadline:
// room for rendering and recording around the HTTP attempt.
const TaskTimeoutSlack = 15 * time.Second

// NewTask builds the asynq task of one delivery; p may be nil (a partner
// no longer in the config).
func NewTask(pl *Payload, timeout time.Duration, queue string) (*asynq.Task, error) {
	b, err := EncodePayload(pl)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeDeliver, b,
		asynq.TaskID(pl.Delivery),
		asynq.Queue(queue),
		asynq.MaxRetry(TaskMaxRetry),
		asynq.Timeout(timeout+TaskTimeoutSlack),
	), nil
}
