package dispatcher_test

import (
	"context"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/postbackhq/postback/dispatcher"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/wire"
)

// With a TracerProvider, Enqueue makes the event's intake span under the
// caller's span, and the queued task carries that span's traceparent.
func TestClient_TracerProvider(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	rdb, err := dispatcher.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := dispatcher.NewClient(dispatcher.ClientConfig{Redis: rdb, ConfigYAML: []byte(secretYAML), TracerProvider: tp})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	ctx, parent := tp.Tracer("backend").Start(context.Background(), "checkout")
	_, err = c.Enqueue(ctx, &dispatcher.Event{ID: "t-1", Name: "install"})
	require.NoError(t, err)
	parent.End()

	var intake *tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == tracing.SpanIntake {
			intake = &s
		}
	}
	require.NotNil(t, intake)
	require.Equal(t, parent.SpanContext().SpanID(), intake.Parent.SpanID())
	tasks, err := asynq.NewInspectorFromRedisClient(rdb).ListPendingTasks(wire.QueueDefault)
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	pl, err := wire.DecodePayload(tasks[0].Payload)
	require.NoError(t, err)
	require.Equal(t, tracing.FormatTraceParent(intake.SpanContext), pl.TraceParent)
}
