// Package httpapi serves postback's HTTP API (documented in
// api/openapi.yaml): POST /v1/events, POST /v1/events/batch (a JSON
// object, a bare array or NDJSON, up to 1000 events, one result each),
// GET /v1/deliveries/{id}, and without auth /healthz, /readyz and
// /metrics. Every error is JSON:
//
//	{"error": {"code": "invalid_event", "message": "name: required", "field": "name"}}
//
// Redis failing answers 503 with Retry-After: nothing is reported stored
// that was not.
package httpapi
