// Package intake stores events: it validates and routes each one, claims
// its id (de-duplication within the dedup window), and enqueues one asynq
// task per delivery, or bundles for a batch, answering only once all of it
// is stored. It is what the HTTP API and the dispatcher package's Client
// run.
package intake
