// Package store owns postback's Redis I/O: event claims (de-duplication),
// delivery records, their attempt history and leases, the per-partner
// dead-letter queues, stats counters, connecting to Redis from a URL, the
// auto-pipelining of concurrent commands, and putting back asynq tasks
// that a worker lost. asynq keeps the queues themselves; everything else
// postback writes to Redis goes through here.
//
// Every change that touches more than one key is one Lua script whose
// comment lists its KEYS and ARGV, so a crash never leaves half a move.
// Key names are built in keys.go (asynq's, which a recovery script
// touches, in recover.go) and nowhere else.
package store
