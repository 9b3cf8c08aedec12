// Package httpapi serves postback's HTTP API (SPEC §7): POST /v1/events,
// GET /v1/deliveries/{id}, /healthz and /readyz. Every error is JSON:
//
//	{"error": {"code": "invalid_event", "message": "name: required", "field": "name"}}
package httpapi
