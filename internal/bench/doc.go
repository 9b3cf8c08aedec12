// Package bench measures postback end to end on a real Redis and states
// every figure next to a baseline measured in the same run: raw asynq
// (enqueue plus a no-op handler) with the same Redis, the same payload and
// the same concurrency. It starts the HTTP API, a delivery.Worker and a
// loopback partner in one process and drives events through all of them.
//
// Run is the engine; `postback bench` is its command-line wiring.
//
// The phases run one after the other on one Redis database, which must be
// empty at the start: bench flushes it between phases and at the end, so
// that each figure sees only its own keys.
package bench
