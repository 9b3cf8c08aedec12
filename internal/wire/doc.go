// Package wire holds every form postback stores in Redis that a later
// version must still read: a delivery task's payload, a bundle of them,
// an event's claim, and the task types and queues. Each codec reads the
// forms earlier versions wrote; the tests here keep them readable.
package wire
