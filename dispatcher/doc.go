// Package dispatcher is what a Go backend imports to report conversions
// to postback: a Client that validates, de-duplicates and routes each
// Event and stores its deliveries in Redis, where postback's workers pick
// them up and send them to partners.
//
// One delivery is one (event, partner) pair. Its id is derived from the
// two, so it is stable across retries and replays: partners receive it as
// the Idempotency-Key header and can de-duplicate on it.
//
// The Client reads postback.yaml for routing only; it never needs the
// partners' URLs or secrets. Run the workers with `postback worker`.
package dispatcher
