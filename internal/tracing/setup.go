package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/postbackhq/postback/internal/version"
)

// Setup says whether and how a process traces.
type Setup struct {
	// On turns tracing on (--otel) even when no OTEL_EXPORTER_OTLP_*
	// endpoint is set: spans then go to the exporter's default,
	// http://localhost:4318.
	On bool
	// Getenv reads the environment; default os.Getenv.
	Getenv func(string) string
}

// Enabled reports whether s turns tracing on: --otel, or an OTLP endpoint
// in the environment (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). OTEL_SDK_DISABLED=true and
// OTEL_TRACES_EXPORTER=none turn it off whatever else says.
func (s Setup) Enabled() bool {
	env := s.getenv()
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") || env("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return s.On || env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

func (s Setup) getenv() func(string) string {
	if s.Getenv != nil {
		return s.Getenv
	}
	return os.Getenv
}

// check refuses what the environment asks for and this build cannot do.
func (s Setup) check() error {
	env := s.getenv()
	if e := env("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		return fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q: postback exports spans with otlp only (or none)", e)
	}
	proto := env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if proto == "" {
		proto, name = env("OTEL_EXPORTER_OTLP_PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	if proto != "" && proto != "http/protobuf" {
		return fmt.Errorf("tracing: %s=%q: postback sends OTLP over http/protobuf only (port 4318 on a collector)", name, proto)
	}
	return nil
}

// Start returns the process's Tracer and the function that flushes and
// stops it at exit, or a nil Tracer and a no-op when s does not turn
// tracing on. Spans go through the SDK's batch processor to an OTLP/HTTP
// exporter configured by the standard OTEL_EXPORTER_OTLP_* variables
// (endpoint, headers, timeout, compression, certificates); the sampler is
// OTEL_TRACES_SAMPLER's (default parentbased_always_on), and
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the process
// (service.name defaults to postback).
func Start(ctx context.Context, s Setup) (*Tracer, func(context.Context) error, error) {
	off := func(context.Context) error { return nil }
	if !s.Enabled() {
		return nil, off, nil
	}
	if err := s.check(); err != nil {
		return nil, off, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, off, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "postback"), attribute.String("service.version", version.Version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, off, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return New(tp), tp.Shutdown, nil
}
