package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
	"github.com/postbackhq/postback/templates"
)

// ErrEarlierPending defers a delivery of an ordered partner while an
// earlier delivery of its sequence is not final.
var ErrEarlierPending = errors.New("an earlier delivery of its sequence is not final")

// waitTurn is a delivery waiting for an earlier one of its sequence:
// looked at again after a delay that grows with the waits so far (n),
// from a quarter second to a few seconds, spending no attempt.
func waitTurn(n int, rnd float64, blocker string) error {
	d := min(250*time.Millisecond<<min(n, 5), turnRecheck)
	return retry.Defer(d+time.Duration(rnd*float64(250*time.Millisecond)), fmt.Errorf("%w: waits for %s", ErrEarlierPending, blocker))
}

// turnRecheck is how often, at the least, a delivery waiting its turn
// looks again.
const turnRecheck = 5 * time.Second

// stranded is how many blockers with no task left one turn check drops
// before it defers: each is a delivery whose intake failed after it took
// its place in the sequence, and that nothing will ever run.
const stranded = 4

// turn says whether the delivery may be attempted now, by the order of its
// sequence: nil, or the deferral that waits for the earlier delivery.
func (r *run) turn(ctx context.Context) error {
	if r.meta.Order == "" {
		return nil
	}
	h := r.h
	t := r.seqTurn // read along with the record
	for i := range stranded {
		if i > 0 {
			var err error
			if t, err = r.st.OrderTurn(ctx, r.meta.Order, r.meta.ID); err != nil {
				return storeFailed(err)
			}
		}
		if t.Blocker == "" {
			return nil
		}
		if t.BlockerStatus != "" {
			return r.waitFor(ctx, t.Blocker)
		}
		// Never attempted: still queued, held or retried in its task, or
		// stranded by an intake that failed after it joined.
		alive, err := r.st.TaskExists(ctx, []string{wire.Queue(r.st.Index()), wire.ReplayQueue(r.st.Index())}, t.BlockerTask, t.Blocker)
		if err != nil {
			return storeFailed(err)
		}
		if alive {
			return r.waitFor(ctx, t.Blocker)
		}
		if _, err := r.st.OrderDrop(ctx, r.meta.Order, t.Blocker); err != nil {
			return storeFailed(err)
		}
		h.log.Warn("dropped a stranded delivery from its sequence", "delivery", r.meta.ID, "partner", r.meta.Partner, "stranded", t.Blocker)
	}
	return nil
}

func (r *run) waitFor(ctx context.Context, blocker string) error {
	n, _ := asynq.GetRetryCount(ctx)
	return r.deferred(ctx, waitTurn(n, r.h.rnd(), blocker))
}

// held says why the delivery is held back by its partner's lifecycle
// rules, "" when it goes: cancelled by a rejection while held, or outside
// the partner's window. The code names the rule.
func (r *run) held(ctx context.Context, v *templates.Values) (reason, code string, err error) {
	p := r.p
	if p.CancelOnReject && r.rec == nil {
		by, err := r.st.Cancelled(ctx, r.meta.ID)
		if err != nil {
			return "", "", err
		}
		if by != "" {
			return config.ReasonRejectedBeforeSend + ": cancelled with " + by, config.ReasonRejectedBeforeSend, nil
		}
	}
	if why := p.OutsideWindow(v, r.pl.Event.Timestamp); why != "" {
		return why, config.ReasonOutsideWindow, nil
	}
	return "", "", nil
}

// dedup takes the partner's dedup key for the delivery: "" when it may be
// sent, or the skip reason naming the delivery it repeats.
func (r *run) dedup(ctx context.Context, v *templates.Values) (string, error) {
	p := r.p
	key, err := p.DedupKey(v)
	if err != nil || key == "" {
		return "", nil // nothing to guard on: a key that does not render is no key
	}
	entry := r.st.DedupKey(p.ID, key)
	holder, err := r.st.ClaimDedup(ctx, entry, r.meta.ID, p.Dedup.Window)
	if err != nil {
		return "", err
	}
	if holder != "" {
		return config.ReasonDuplicate + ": repeats delivery " + holder, nil
	}
	r.meta.Dedup, r.meta.DedupTTL = entry, p.Dedup.Window
	return "", nil
}

// observeSkip records a delivery skipped on purpose; code is a lifecycle
// reason, which the metric's result names, or "" for the others.
func observeSkip(partner, code string) {
	result := "skipped"
	if code != "" {
		result = code
	}
	metrics.Deliveries.WithLabelValues(partner, result).Inc()
}
