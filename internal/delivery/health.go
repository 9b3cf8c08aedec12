package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/postbackhq/postback/internal/opsevent"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/triage"
	"github.com/postbackhq/postback/retry"
)

// This file is what an attempt tells about its partner's health beyond
// metrics: the run of failures that auto_pause counts, the operational
// events (partner.failing, partner.recovered, partner.paused,
// dlq.dead_lettered), and the triage index of dead letters.

// countHealth asks the outcome write of attempt a to count it towards the
// partner's failures in a row and its failing state, when the partner
// has auto_pause or operational events are sent. The count is made in
// the outcome's own script: no round trip of its own.
func (r *run) countHealth(a store.Attempt) {
	n := r.p.AutoPause.ConsecutiveFailures
	track := r.h.events.Enabled()
	if n == 0 && !track {
		return
	}
	hl := &store.Health{AutoPause: n, Track: track}
	if n > 0 && a.Outcome != retry.Delivered.String() {
		hl.PauseReason = fmt.Sprintf("auto: %d consecutive failures: %s", n, redactText(a.Error))
	}
	r.meta.Health = hl
}

// reportHealth logs and raises what the outcome write of a found.
func (r *run) reportHealth(a store.Attempt) {
	hl := r.meta.Health
	if hl == nil || !r.freed {
		return
	}
	id, n, now := r.p.ID, r.p.AutoPause.ConsecutiveFailures, r.h.now()
	switch {
	case !hl.Paused.IsZero():
		r.h.log.Warn("partner auto-paused: its deliveries are held until postback partners resume", "partner", id,
			"consecutive_failures", n, "error", redactText(a.Error))
		r.h.events.Go(opsevent.Paused(id, hl.PauseReason, "auto", hl.Paused, n, n))
	case !hl.Failing.IsZero():
		r.h.log.Warn("partner failing: half way to its auto-pause", "partner", id, "consecutive_failures", hl.Fails, "auto_pause_after", n)
		r.h.events.Go(opsevent.Failing(id, "auto_pause_half_way", hl.Failing, hl.Fails, n))
	case !hl.Recovered.IsZero():
		r.h.log.Info("partner recovered: first success after failing", "partner", id, "failing_since", hl.Recovered.UTC())
		r.h.events.Go(opsevent.Recovered(id, hl.Recovered, now))
	}
}

// deadNote is what a dead letter's triage fingerprint is made of.
type deadNote struct {
	reason string
	status int
	err    string
	url    string
}

// indexDead adds the dead letter just written to the triage index, and
// notes it for the partner's dlq.dead_lettered event. The letter is
// stored already: an index write that fails is made up by the next
// triage.
func (r *run) indexDead(ctx context.Context, note deadNote) {
	fp := triage.Of(r.meta.Partner, note.reason, note.status, note.err)
	g := store.TriageGroup{ID: fp.ID(), Reason: fp.Reason, Status: fp.Status, Error: fp.Error,
		SampleID: r.meta.ID, SampleError: triage.RedactText(note.err)}
	if note.url != "" {
		g.SampleURL = triage.RedactURL(note.url)
	}
	e := store.TriageEntry{Group: g.ID, Amount: string(r.pl.Event.Revenue.Amount), Currency: r.pl.Event.Revenue.Currency}
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeWriteTimeout)
	defer cancel()
	if err := r.st.IndexDead(ictx, r.meta.Partner, map[string]store.TriageEntry{r.meta.ID: e}, []store.TriageGroup{g}); err != nil {
		r.h.log.Debug("dead letter not indexed for triage", "delivery", r.meta.ID, "err", err)
	}
	r.h.events.DeadLettered(r.meta.Partner, r.h.now())
}

// circuitOpened raises partner.failing when partner's circuit opened in
// this worker and no worker had reported it failing yet.
func circuitOpened(s *store.Store, events *opsevent.Emitter, breakerFailures int) func(string) {
	return func(partner string) {
		if !events.Enabled() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		now := time.Now()
		if first, err := s.MarkFailing(ctx, partner, now); err != nil || !first {
			return
		}
		events.Go(opsevent.Failing(partner, "circuit_open", now, breakerFailures, 0))
	}
}
