package bench

import (
	"context"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/postbackhq/postback/internal/tracing"
)

// startTracing sets r.tracer when the run traces, and returns the count
// of spans exported so far and the function that stops the tracer.
func (r *run) startTracing() (spans func() int64, stop func()) {
	if !r.cfg.Tracing {
		return func() int64 { return 0 }, func() {}
	}
	exp := &countingExporter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	r.tracer = tracing.New(tp)
	return func() int64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tp.ForceFlush(ctx)
			return exp.n.Load()
		}, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tp.Shutdown(ctx)
		}
}

// countingExporter counts the spans it is given and drops them: the
// SDK's work, without a collector's network round trips.
type countingExporter struct{ n atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.n.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }
