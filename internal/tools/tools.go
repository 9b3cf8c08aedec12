//go:build tools

// Package tools pins modules that packages under construction will import,
// so `go mod tidy` keeps them until they do. Removed once all are in use.
package tools

import (
	_ "github.com/getkin/kin-openapi/openapi3"
	_ "github.com/getkin/kin-openapi/openapi3filter"
	_ "github.com/getkin/kin-openapi/routers/gorillamux"
	_ "github.com/go-redis/redis_rate/v10"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/collectors"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/shopspring/decimal"
	_ "github.com/sony/gobreaker/v2"
	_ "github.com/standard-webhooks/standard-webhooks/libraries/go"
	_ "github.com/valyala/fasttemplate"
	_ "go.uber.org/goleak"
	_ "golang.org/x/time/rate"
)
