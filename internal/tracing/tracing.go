package tracing

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/postbackhq/postback/internal/version"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// Span names.
const (
	SpanIntake  = "postback.intake"
	SpanAttempt = "postback.attempt"
	SpanReplay  = "postback.replay"
)

// Attribute keys.
const (
	AttrEventID    = attribute.Key("postback.event.id")
	AttrPartners   = attribute.Key("postback.partners")
	AttrQueued     = attribute.Key("postback.deliveries.queued")
	AttrSkipped    = attribute.Key("postback.deliveries.skipped")
	AttrResult     = attribute.Key("postback.result")
	AttrDeliveryID = attribute.Key("postback.delivery.id")
	AttrPartner    = attribute.Key("postback.partner")
	AttrAttempt    = attribute.Key("postback.attempt")
	AttrReplay     = attribute.Key("postback.replay")
	AttrOutcome    = attribute.Key("postback.outcome")
	AttrStatus     = attribute.Key("http.response.status_code")
	AttrDurationMS = attribute.Key("postback.attempt.duration_ms")
	AttrDryRun     = attribute.Key("postback.replay.dry_run")
	AttrSelected   = attribute.Key("postback.replay.selected")
	AttrEnqueued   = attribute.Key("postback.replay.enqueued")
	AttrFailed     = attribute.Key("postback.replay.failed")
	AttrGone       = attribute.Key("postback.replay.gone")
)

// instrumentation names postback's tracer.
const instrumentation = "github.com/postbackhq/postback"

// Tracer makes postback's spans. A nil *Tracer is tracing off: its hooks
// return what they were given and a zero Span, which does nothing.
type Tracer struct {
	t trace.Tracer
}

// New returns a Tracer that makes its spans with tp; nil when tp is nil.
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{t: tp.Tracer(instrumentation, trace.WithInstrumentationVersion(version.Version))}
}

// Span is one of postback's spans; the zero Span does nothing.
type Span struct {
	s trace.Span
}

// TraceParent is the span's W3C traceparent, for a task to carry; "" for
// the zero Span.
func (s Span) TraceParent() string {
	if s.s == nil {
		return ""
	}
	return FormatTraceParent(s.s.SpanContext())
}

// Intake starts the span of one event's intake, a child of ctx's span.
func (t *Tracer) Intake(ctx context.Context) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.t.Start(ctx, SpanIntake, trace.WithSpanKind(trace.SpanKindProducer))
	return ctx, Span{s}
}

// Intake results.
const (
	ResultAccepted    = "accepted"
	ResultDuplicate   = "duplicate"
	ResultInvalid     = "invalid"
	ResultUnavailable = "unavailable"
	ResultFailed      = "failed"
)

// EndIntake ends an intake span: the event's id (empty when the event was
// not valid), the deliveries of its receipt, and the result (Result…).
func (s Span) EndIntake(eventID string, deliveries []wire.Delivery, result string) {
	if s.s == nil {
		return
	}
	partners := make([]string, len(deliveries))
	skipped := 0
	for i, d := range deliveries {
		partners[i] = d.Partner
		if d.Reason != "" {
			skipped++
		}
	}
	attrs := []attribute.KeyValue{AttrResult.String(result)}
	if eventID != "" {
		attrs = append(attrs, AttrEventID.String(eventID), AttrPartners.StringSlice(partners),
			AttrQueued.Int(len(deliveries)-skipped), AttrSkipped.Int(skipped))
	}
	s.s.SetAttributes(attrs...)
	if result != ResultAccepted && result != ResultDuplicate {
		s.s.SetStatus(codes.Error, result)
	}
	s.s.End()
}

// Attempt starts the span of one delivery attempt, linked to the span that
// enqueued the delivery when traceParent names one (the task's).
func (t *Tracer) Attempt(ctx context.Context, traceParent string) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	if sc, ok := ParseTraceParent(traceParent); ok {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	ctx, s := t.t.Start(ctx, SpanAttempt, opts...)
	return ctx, Span{s}
}

// AttemptEnd is what an attempt span records.
type AttemptEnd struct {
	Delivery string
	Partner  string
	Attempt  int // 1 for the first
	Replay   int // the delivery's replays from the DLQ so far
	Outcome  string
	Status   int // the partner's HTTP status; 0 for none
	Duration time.Duration
}

// EndAttempt ends an attempt span.
func (s Span) EndAttempt(a AttemptEnd) {
	if s.s == nil {
		return
	}
	s.s.SetAttributes(
		AttrDeliveryID.String(a.Delivery), AttrPartner.String(a.Partner),
		AttrAttempt.Int(a.Attempt), AttrReplay.Int(a.Replay), AttrOutcome.String(a.Outcome),
		AttrStatus.Int(a.Status), AttrDurationMS.Float64(float64(a.Duration)/float64(time.Millisecond)),
	)
	if a.Outcome != retry.Delivered.String() {
		s.s.SetStatus(codes.Error, a.Outcome)
	}
	s.s.End()
}

// Replay starts the span of a replay of dead letters; the deliveries it
// enqueues carry its traceparent (see TraceParentOf).
func (t *Tracer) Replay(ctx context.Context, dryRun bool) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.t.Start(ctx, SpanReplay, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(AttrDryRun.Bool(dryRun)))
	return ctx, Span{s}
}

// ReplayEnd is what a replay span records.
type ReplayEnd struct {
	Partners                         []string
	Selected, Enqueued, Failed, Gone int
	Err                              error // the replay stopped early
}

// EndReplay ends a replay span.
func (s Span) EndReplay(r ReplayEnd) {
	if s.s == nil {
		return
	}
	s.s.SetAttributes(AttrPartners.StringSlice(r.Partners), AttrSelected.Int(r.Selected),
		AttrEnqueued.Int(r.Enqueued), AttrFailed.Int(r.Failed), AttrGone.Int(r.Gone))
	if r.Err != nil {
		// Not the error's text: it can quote Redis's answer or a payload.
		s.s.SetStatus(codes.Error, "replay stopped early")
	}
	s.s.End()
}

// TraceParentOf is the traceparent of ctx's span, "" when it has none.
func TraceParentOf(ctx context.Context) string {
	return FormatTraceParent(trace.SpanContextFromContext(ctx))
}

// Inject sets the traceparent header of ctx's span on h (a partner that
// asked for it: propagate_trace); nothing when ctx has no span.
func Inject(ctx context.Context, h http.Header) {
	if tp := TraceParentOf(ctx); tp != "" {
		h.Set("Traceparent", tp)
	}
}

// On reports whether s is a real span (tracing is on).
func (s Span) On() bool { return s.s != nil }

// WithRemoteParent returns ctx with the span of traceParent (a caller's
// W3C traceparent header) as the remote parent of the spans started in
// it; ctx itself when traceParent is empty or malformed.
func WithRemoteParent(ctx context.Context, traceParent string) context.Context {
	sc, ok := ParseTraceParent(traceParent)
	if !ok {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}
