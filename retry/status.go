package retry

// Status is where a delivery stands: what its record, the receipt of its
// event, `deliveries show` and the HTTP API say of it. An [Outcome] is
// what one attempt came to; a delivery's Status follows from its
// attempts' outcomes.
type Status string

// The statuses a delivery can hold. Their strings are stored in delivery
// records and written by the HTTP API and `-o json`.
const (
	StatusQueued    Status = "queued"    // enqueued, no attempt yet
	StatusRetrying  Status = "retrying"  // failed at least once, another attempt is scheduled
	StatusDelivered Status = "delivered" // the partner accepted it
	StatusDead      Status = "dead"      // in the partner's dead-letter queue
	StatusSkipped   Status = "skipped"   // not sent on purpose (when, require, consent)
	StatusPurged    Status = "purged"    // removed from the DLQ by `dlq purge`; never sent again
)

// Final reports whether no more attempts will be made without a replay.
func (s Status) Final() bool {
	return s == StatusDelivered || s == StatusDead || s == StatusSkipped || s == StatusPurged
}
