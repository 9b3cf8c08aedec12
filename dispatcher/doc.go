// Package dispatcher is the core of postback: the conversion Event and its
// validation, the compiled Partner and routing, the Go Client that enqueues
// deliveries into Redis, and the asynq Handler that renders, sends and
// classifies them.
//
// One delivery is one (event, partner) pair. Its id is derived from the two
// (DeliveryID), so it is stable across retries and replays: it is the asynq
// TaskID, the Idempotency-Key header, the {delivery_id} macro and the key of
// the delivery's record and dead letter.
package dispatcher
