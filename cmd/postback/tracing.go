package main

import (
	"context"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/tracing"
)

// otelFlag turns tracing on; an OTLP endpoint in the environment does too.
var otelFlag = &cli.BoolFlag{Name: "otel", EnvVars: []string{"POSTBACK_OTEL"},
	Usage: "export OpenTelemetry traces over OTLP/HTTP, configured by the OTEL_EXPORTER_OTLP_* variables (on too when OTEL_EXPORTER_OTLP_ENDPOINT is set)"}

// startTracing starts the process's tracer when --otel or the environment
// turns tracing on; a nil tracer and no-op stop otherwise.
func startTracing(c *cli.Context, log *slog.Logger) (*tracing.Tracer, func(context.Context) error, error) {
	tr, stop, err := tracing.Start(c.Context, tracing.Setup{On: c.Bool("otel")})
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	if tr != nil {
		log.Info("tracing on: spans exported over OTLP/HTTP (OTEL_EXPORTER_OTLP_* variables)")
	}
	return tr, stop, nil
}
