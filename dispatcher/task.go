package dispatcher

import (
	"encoding/json"
	"fmt"
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

// payload is what a delivery task carries: the event (redacted for the
// partner when consent is missing) and who it goes to. The URL is rendered
// at delivery time from the partner's current config.
type payload struct {
	Delivery string `json:"d"`
	Partner  string `json:"p"`
	// Enqueued is when the delivery was first enqueued (Unix ms); max_age
	// counts from it, across replays too.
	Enqueued int64  `json:"t"`
	Event    *Event `json:"e"`
}

func (p *payload) first() time.Time { return time.UnixMilli(p.Enqueued) }

func decodePayload(b []byte) (*payload, error) {
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode delivery task: %w", err)
	}
	if p.Delivery == "" || p.Partner == "" || p.Event == nil {
		return nil, fmt.Errorf("decode delivery task: missing delivery, partner or event")
	}
	return &p, nil
}

// newTask builds the asynq task of one delivery.
func newTask(pl *payload, p *Partner, queue string) (*asynq.Task, error) {
	b, err := json.Marshal(pl)
	if err != nil {
		return nil, err
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return asynq.NewTask(TypeDeliver, b,
		asynq.TaskID(pl.Delivery),
		asynq.Queue(queue),
		asynq.MaxRetry(taskMaxRetry),
		asynq.Timeout(timeout+taskTimeoutSlack),
	), nil
}

func encodePayload(p *payload) ([]byte, error) { return json.Marshal(p) }
