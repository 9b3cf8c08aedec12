// Package delivery is the worker: asynq servers that take delivery tasks
// from Redis, and the Handler that runs each one.
//
// One attempt of one delivery is a run (attempt.go): it takes the
// delivery's lease, checks the partner's current config, renders the
// request, passes the partner's gate (gate.go: rate limit, concurrency
// cap, circuit breaker), sends it through the SSRF-guarded client
// (sender.go), and records the outcome, which frees the lease. What the
// task answers asynq when it must run again, with its delay and whether it
// spends an attempt, is decided in decide.go. A bundle (bundle.go) makes
// the first attempts of many deliveries to one partner in one task and
// hands whatever is left to each delivery's own task. The recoverer
// (recover.go) puts back tasks a Redis outage made asynq lose.
package delivery
