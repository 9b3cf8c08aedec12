// Package store owns postback's own Redis state: event de-duplication,
// delivery records and their attempt history, and the per-partner
// dead-letter queues. asynq keeps the queues themselves; everything else
// postback writes to Redis goes through here.
//
// Every change that touches more than one key is one Lua script whose
// comment lists its KEYS and ARGV, so a crash never leaves half a move.
// Key names are built in keys.go and nowhere else.
package store
