// Package retry decides what happens after one delivery attempt: whether the
// partner accepted the postback, whether to try again and when, or whether the
// delivery goes to the dead-letter queue and with which reason.
//
// It is pure: no Redis, no asynq, no network. Time and randomness are passed
// in, so every decision can be reproduced in a test.
//
// The pieces:
//   - [Policy] is a partner's `retry:` config: exponential backoff with
//     jitter ([Policy.Delay]) bounded by max_attempts and max_age
//     ([Policy.Next]).
//   - [Success] is a partner's `success:` rule, with its `responses:` rules
//     ([Rule], tried first), and [Success.Classify] turns one attempt's
//     [Result] into a [Decision].
//   - [ParseRetryAfter] reads a Retry-After header.
//   - [Outcome] names what happened; its strings are the DLQ reasons and the
//     metric labels.
//   - [DelayError], made by [After] and [Defer], is how a queue handler asks
//     to run a delivery again later, spending an attempt or not.
package retry
