package dispatcher

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

// taskMaxRetry is asynq's retry limit on every delivery task. Our own retry
// policy decides when a delivery is exhausted and dead-letters it itself;
// this limit only has to stay out of the way (asynq's default of 25 would
// silently cap a partner's max_attempts, and an archived task would escape
// our DLQ). Deferrals do not count against it.
const taskMaxRetry = 1 << 20

// taskTimeoutSlack is added to a partner's timeout for the task's deadline:
// room for rendering and recording around the HTTP attempt.
const taskTimeoutSlack = 15 * time.Second

// newTask builds the asynq task of one delivery; p may be nil (a partner
// no longer in the config).
func newTask(pl *payload, p *Partner, queue string) (*asynq.Task, error) {
	b, err := encodePayload(pl)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeDeliver, b,
		asynq.TaskID(pl.Delivery),
		asynq.Queue(queue),
		asynq.MaxRetry(taskMaxRetry),
		asynq.Timeout(partnerTimeout(p)+taskTimeoutSlack),
	), nil
}
