package tracing_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/wire"
)

func TestTraceParent_RoundTrip(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sc, ok := tracing.ParseTraceParent(tp)
	require.True(t, ok)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", sc.TraceID().String())
	require.Equal(t, "00f067aa0ba902b7", sc.SpanID().String())
	require.True(t, sc.IsSampled())
	require.True(t, sc.IsRemote())
	require.Equal(t, tp, tracing.FormatTraceParent(sc))

	// A later version is read as far as version 00 defines it.
	sc, ok = tracing.ParseTraceParent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-later")
	require.True(t, ok)
	require.False(t, sc.IsSampled())

	require.Empty(t, tracing.FormatTraceParent(trace.SpanContext{}))
}

func TestTraceParent_Malformed(t *testing.T) {
	for _, tp := range []string{
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      // short
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // 00 with more
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // invalid version
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span id
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // separator
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   // not hex
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // later version, bad tail
	} {
		_, ok := tracing.ParseTraceParent(tp)
		require.False(t, ok, "%q", tp)
	}
}

func TestSetup_Enabled(t *testing.T) {
	for name, tc := range map[string]struct {
		on   bool
		env  map[string]string
		want bool
	}{
		"default off":     {false, nil, false},
		"--otel":          {true, nil, true},
		"endpoint":        {false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		"traces endpoint": {false, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		"sdk disabled":    {true, map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
		"exporter none":   {true, map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			s := tracing.Setup{On: tc.on, Getenv: func(k string) string { return tc.env[k] }}
			require.Equal(t, tc.want, s.Enabled())
		})
	}
}

func TestStart_RefusesWhatItCannotExport(t *testing.T) {
	for env, want := range map[[2]string]string{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}:     `OTEL_EXPORTER_OTLP_PROTOCOL="grpc": postback sends OTLP over http/protobuf only`,
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "x"}: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="x"`,
		{"OTEL_TRACES_EXPORTER", "console"}:         `OTEL_TRACES_EXPORTER="console": postback exports spans with otlp only`,
	} {
		s := tracing.Setup{On: true, Getenv: func(k string) string {
			if k == env[0] {
				return env[1]
			}
			return ""
		}}
		tr, _, err := tracing.Start(context.Background(), s)
		require.ErrorContains(t, err, want)
		require.Nil(t, tr)
	}
}

func TestStart_OffAndOn(t *testing.T) {
	tr, stop, err := tracing.Start(context.Background(), tracing.Setup{Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	require.Nil(t, tr)
	require.NoError(t, stop(context.Background()))

	tr, stop, err = tracing.Start(context.Background(), tracing.Setup{On: true, Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	require.NotNil(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = stop(ctx) // nothing was sent: the flush has nothing to send
}

// Off, every hook on the hot paths is a nil check: no allocation, no span.
func TestTracer_OffAllocatesNothing(t *testing.T) {
	var tr *tracing.Tracer
	ctx := context.Background()
	h := http.Header{}
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ds := []wire.Delivery{{ID: "dlv_1", Partner: "p"}}
	allocs := testing.AllocsPerRun(100, func() {
		c, s := tr.Intake(ctx)
		if s.TraceParent() != "" || s.On() || c != ctx {
			t.Fatal("a nil Tracer made a span")
		}
		s.EndIntake("e", ds, tracing.ResultAccepted)
		c, s = tr.Attempt(ctx, tp)
		tracing.Inject(c, h)
		s.EndAttempt(tracing.AttemptEnd{Delivery: "dlv_1", Partner: "p", Attempt: 1, Outcome: "delivered", Status: 200})
		_, s = tr.Replay(ctx, false)
		s.EndReplay(tracing.ReplayEnd{})
	})
	require.Zero(t, allocs)
	require.Empty(t, h)
}

// The per-attempt hooks, off and on (SDK, batch processor, an exporter
// that drops): what tracing adds to one delivery attempt's CPU. The
// traceparent header (propagate_trace) is left out: a partner opts in.
func BenchmarkAttemptHooks(b *testing.B) {
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	run := func(b *testing.B, tr *tracing.Tracer) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, s := tr.Attempt(ctx, tp)
			s.EndAttempt(tracing.AttemptEnd{Delivery: "dlv_0123456789abcdef0123456789abcdef", Partner: "acme", Attempt: 1,
				Outcome: "delivered", Status: 200, Duration: 3 * time.Millisecond})
		}
	}
	b.Run("off", func(b *testing.B) { run(b, nil) })
	b.Run("on", func(b *testing.B) {
		sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer func() { _ = sdk.Shutdown(context.Background()) }()
		run(b, tracing.New(sdk))
	})
}
