package ops

import "github.com/postbackhq/postback/internal/tracing"

// endReplay ends a replay's span with what it did.
func endReplay(span tracing.Span, partners []string, res ReplayResult, err error) {
	span.EndReplay(tracing.ReplayEnd{
		Partners: partners, Selected: res.Selected, Enqueued: res.Enqueued, Failed: res.Failed, Gone: res.Gone, Err: err,
	})
}
