package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/wire"
)

// batchResult is the answer about one event of a batch.
type batchResult struct {
	Index      int             `json:"index"`
	Status     string          `json:"status"` // accepted, duplicate or rejected
	EventID    string          `json:"event_id,omitempty"`
	Deliveries []wire.Delivery `json:"deliveries,omitzero"`
	Warnings   []event.Warning `json:"warnings,omitempty"` // fields dropped from a stored event
	Error      *errorDetail    `json:"error,omitempty"`
}

// postBatch takes up to intake.MaxBatch events as {"events": […]}, a
// bare JSON array or NDJSON, and answers 200 with one result per event in
// order. When Redis fails for any event the whole answer is 503: repeating
// the batch is safe, since the events already stored come back as
// duplicates.
func (s *Server) postBatch(x exchange, cfg *config.Config) {
	ndjson := isNDJSON(x.header("Content-Type"))
	body, ok := s.readBody(x, cfg.API.MaxBodyBytes)
	if !ok {
		return
	}
	var raws []json.RawMessage
	var err error
	if ndjson {
		raws = event.SplitNDJSON(body)
	} else {
		raws, err = event.SplitJSON(body, false)
	}
	switch {
	case err != nil:
		writeError(x, http.StatusBadRequest, "invalid_batch", err.Error(), "")
		return
	case len(raws) == 0:
		writeError(x, http.StatusBadRequest, "invalid_batch", "the batch holds no events", "")
		return
	case len(raws) > intake.MaxBatch:
		writeError(x, http.StatusBadRequest, "batch_too_large",
			fmt.Sprintf("%d events: a batch holds at most %d", len(raws), intake.MaxBatch), "")
		return
	}

	now := s.cfg.Now()
	results := make([]batchResult, len(raws))
	valid := make([]*event.Event, 0, len(raws))
	index := make([]int, 0, len(raws))
	for i, raw := range raws {
		results[i].Index = i
		ev, err := event.DecodeEvent(raw, now)
		if err != nil {
			results[i].reject(raw, err)
			continue
		}
		valid = append(valid, ev)
		index = append(index, i)
	}
	var failed error // the first
	stored, why := false, len(unconfirmed)-1
	ctx, cancel := context.WithTimeout(x.context(), s.cfg.StoreTimeout)
	defer cancel()
	if s.cfg.Client.Traced() {
		ctx = intake.WithCaller(ctx, x.header("Traceparent"))
	}
	for j, res := range s.cfg.Client.EnqueueBatch(ctx, valid) {
		br := &results[index[j]]
		br.EventID = valid[j].ID
		var fe *event.FieldError
		switch {
		case res.Err == nil:
			stored = true
			br.Status, br.Deliveries, br.Warnings = resultAccepted, res.Receipt.Deliveries, res.Receipt.Warnings
			if res.Receipt.Duplicate {
				br.Status = resultDuplicate
			}
		case errors.As(res.Err, &fe):
			br.reject(nil, res.Err)
		default:
			br.Status = resultUnavailable
			if failed == nil {
				failed = res.Err
			}
			why = min(why, whyUnconfirmed(res.Err))
		}
	}
	for _, br := range results {
		received(br.Status)
		dropped(br.Warnings)
	}
	if failed != nil {
		s.storeFailed(x, failed)
		unavailable(x, unconfirmed[why].batch)
		return
	}
	if stored {
		s.failures.stored()
	}
	writeJSON(x, http.StatusOK, struct {
		Results []batchResult `json:"results"`
	}{results})
}

// reject marks the result rejected by err, naming the event id when raw
// has a readable one.
func (br *batchResult) reject(raw json.RawMessage, err error) {
	br.Status = resultRejected
	br.Error = &errorDetail{Code: "invalid_event", Message: err.Error()}
	var fe *event.FieldError
	if errors.As(err, &fe) {
		br.Error.Field = fe.Field
	}
	if raw != nil {
		br.EventID = event.RawEventID(raw)
	}
}

// isNDJSON reports whether ct names newline-delimited JSON.
func isNDJSON(ct string) bool {
	mt, ok := mediaType(ct)
	return ok && (mt == "application/x-ndjson" || mt == "application/ndjson" || mt == "application/jsonl")
}
