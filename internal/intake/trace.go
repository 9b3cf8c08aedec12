package intake

import (
	"context"
	"errors"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/tracing"
)

// endIntake ends the intake span of in (nil: the event was refused before
// it was prepared) with the outcome err.
func endIntake(span tracing.Span, in *incoming, err error) {
	if !span.On() {
		return
	}
	if in == nil {
		span.EndIntake("", nil, intakeResult(false, err))
		return
	}
	span.EndIntake(in.ev.ID, in.rc.Deliveries, intakeResult(in.rc.Duplicate, err))
}

// intakeResult names the outcome of one event's intake for its span.
func intakeResult(duplicate bool, err error) string {
	var fe *event.FieldError
	switch {
	case err == nil && duplicate:
		return tracing.ResultDuplicate
	case err == nil:
		return tracing.ResultAccepted
	case errors.As(err, &fe):
		return tracing.ResultInvalid
	case errors.Is(err, ErrUnavailable):
		return tracing.ResultUnavailable
	}
	return tracing.ResultFailed
}

// intakeSpans starts the intake span of each event of a batch, children of
// ctx's span, and gives each event its span's traceparent; nil when
// tracing is off.
func (c *Client) intakeSpans(ctx context.Context, ins []*incoming) []tracing.Span {
	if c.cfg.Tracer == nil {
		return nil
	}
	spans := make([]tracing.Span, len(ins))
	for j, in := range ins {
		_, spans[j] = c.cfg.Tracer.Intake(ctx)
		in.tp = spans[j].TraceParent()
	}
	return spans
}

// endIntakes ends the spans intakeSpans started, with each event's
// outcome.
func endIntakes(spans []tracing.Span, ins []*incoming, errs []error) {
	for j, span := range spans {
		endIntake(span, ins[j], errs[j])
	}
}

// refusedSpan records a batch's event refused before it was prepared.
func (c *Client) refusedSpan(ctx context.Context, err error) {
	if c.cfg.Tracer == nil {
		return
	}
	_, span := c.cfg.Tracer.Intake(ctx)
	endIntake(span, nil, err)
}

// Traced reports whether the client makes intake spans, so that a caller
// reads a request's traceparent only then (WithCaller).
func (c *Client) Traced() bool { return c.cfg.Tracer != nil }

// WithCaller returns ctx with the caller's span, named by its W3C
// traceparent header, as the parent of the intake spans started in it.
func WithCaller(ctx context.Context, traceParent string) context.Context {
	return tracing.WithRemoteParent(ctx, traceParent)
}
