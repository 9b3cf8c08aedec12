// Package tracing makes postback's OpenTelemetry spans: one for an event's
// intake, one per delivery attempt, linked to the intake's across Redis
// through the traceparent its task carries, and one for a replay of dead
// letters. Tracing is off unless turned on (Start); off, a *Tracer is nil
// and every hook is a nil check that allocates nothing.
//
// Spans carry ids, partner ids, counts, outcomes and status codes: never
// a URL, a header, an event's field values or an error's text, which can
// hold personal data or partners' tokens.
package tracing
