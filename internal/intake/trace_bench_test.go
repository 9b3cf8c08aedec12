package intake_test

import (
	"context"
	"strconv"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/tracing"
)

const traceBenchYAML = `
api:
  keys: ["${api_key}"]
delivery:
  allow_private_networks: true
partners:
  - id: acme_ads
    match: all
    url: "http://127.0.0.1:9/c?click_id={click_id}"
  - id: insights
    match: all
    url: "http://127.0.0.1:9/i?e={event_id}"
`

// BenchmarkClient_EnqueueTracing is one event's Enqueue (two deliveries)
// on the test Redis, with tracing off and on (the SDK's batch processor,
// an exporter that drops): off must allocate what it did before tracing.
func BenchmarkClient_EnqueueTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			var tr *tracing.Tracer
			if on {
				sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer func() { _ = sdk.Shutdown(context.Background()) }()
				tr = tracing.New(sdk)
			}
			s := stacktest.New(b, traceBenchYAML, stacktest.Options{NoWorker: true, Tracer: tr})
			ctx := context.Background()
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				n++
				ev := &event.Event{ID: "bench-" + strconv.Itoa(n), Name: "purchase", ClickID: "abc123"}
				if _, err := s.Client.Enqueue(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
