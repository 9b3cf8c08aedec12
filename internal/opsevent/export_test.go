package opsevent

import "time"

// SetDLQWindow shortens the minute of dlq.dead_lettered events for the
// package's tests.
func SetDLQWindow(d time.Duration) { dlqWindow = d }
