package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/templates"
)

// holdSlack keeps a held delivery cancellable a while past its delay: its
// first attempt may start late, and until then a rejection still cancels
// it.
const holdSlack = time.Hour

// orderValue is the value that orders ev's deliveries to p, "" when p
// orders none or ev has no such value (then the delivery is not ordered).
func orderValue(p *config.Partner, ev *event.Event) string {
	switch p.OrderBy {
	case templates.FieldClickID:
		return ev.ClickID
	case templates.FieldTransactionID:
		return ev.TransactionID
	}
	return ""
}

// lifecycle stores what a delivery's partner asks of its lifecycle before
// its task, stored as taskID, is enqueued in shard st: its place in its sequence, and
// for cancel_on_reject, its transaction's held set or the cancellation a
// rejection makes. (The hold itself is the task's delay.) A failure fails the
// event's intake, whose repeat stores them again (each step is
// idempotent).
func (c *Client) lifecycle(ctx context.Context, st *store.Store, in *incoming, r config.Route, seq, taskID string) error {
	if seq != "" {
		err := st.OrderJoin(ctx, st.OrderKey(r.Partner.ID, seq), r.DeliveryID, taskID, in.cfg.Delivery.AttemptLogRetention)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	return c.hold(ctx, st, in, r)
}

// hold is lifecycle's cancel_on_reject part, in the delivery's shard st.
func (c *Client) hold(ctx context.Context, st *store.Store, in *incoming, r config.Route) error {
	p, ev, retention := r.Partner, in.ev, in.cfg.Delivery.AttemptLogRetention
	if p.Delay <= 0 {
		return nil
	}
	cancellable := p.CancelOnReject && ev.TransactionID != ""
	if cancellable && ev.Rejected() {
		if _, err := st.CancelHeld(ctx, st.TxKey(p.ID, ev.TransactionID), r.DeliveryID, retention); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	if cancellable && !ev.Rejected() {
		if err := st.HoldForCancel(ctx, st.TxKey(p.ID, ev.TransactionID), r.DeliveryID, p.Delay+holdSlack); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	return nil
}

// enqueueOptions are the asynq options of a task to p: its delay.
func enqueueOptions(p *config.Partner) []asynq.Option {
	if p.Delay > 0 {
		return []asynq.Option{asynq.ProcessIn(p.Delay)}
	}
	return nil
}
