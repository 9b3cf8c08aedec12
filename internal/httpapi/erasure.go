package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/store"
)

// maxErasureBody bounds the body of an erasure request: one identifier.
const maxErasureBody = 4 << 10

// isErasureRoute reports whether a request asks for an erasure, which
// reads a small body (see Server.screenFast).
func isErasureRoute(method, path []byte) bool {
	return string(method) == http.MethodPost && string(path) == "/v1/erasures"
}

// erasureRequest is the body of POST /v1/erasures: exactly one identifier.
type erasureRequest struct {
	CustomerUserID *string `json:"customer_user_id"`
	Email          *string `json:"email"`
	DeviceID       *string `json:"device_id"`
}

// subject returns the one identifier the request names.
func (r erasureRequest) subject() (event.Subject, string, error) {
	var kind event.SubjectKind
	var value *string
	n := 0
	for _, f := range []struct {
		k event.SubjectKind
		v *string
	}{{event.SubjectCustomerUserID, r.CustomerUserID}, {event.SubjectEmail, r.Email}, {event.SubjectDeviceID, r.DeviceID}} {
		if f.v != nil {
			kind, value = f.k, f.v
			n++
		}
	}
	if n != 1 {
		return event.Subject{}, "", errors.New("name exactly one of customer_user_id, email or device_id")
	}
	sub, err := event.NewSubject(kind, *value)
	return sub, string(kind), err
}

// erasureAccepted is the answer to POST /v1/erasures.
type erasureAccepted struct {
	ID     string `json:"erasure_id"`
	Status string `json:"status"`
}

// postErasure is POST /v1/erasures: it records the erasure, answers 202
// and runs it in the background. Asking again for the same identifier
// while it runs answers the same erasure, and resumes it if the process
// that ran it stopped.
func (s *Server) postErasure(w http.ResponseWriter, r *http.Request) {
	x := stdExchange{w, r}
	cfg := s.cfg.Config.Load()
	if !s.authorized(x, cfg.API.Keys) {
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxErasureBody+1))
	switch {
	case err != nil:
		writeError(x, http.StatusBadRequest, "bad_request", "body not read: "+err.Error(), "")
		return
	case len(raw) > maxErasureBody:
		writeError(x, http.StatusRequestEntityTooLarge, "body_too_large", "an erasure's body is at most 4 KiB", "")
		return
	}
	var req erasureRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(x, http.StatusBadRequest, "bad_request", `body: want {"customer_user_id": "..."}, {"email": "..."} or {"device_id": "..."}`, "")
		return
	}
	sub, field, err := req.subject()
	if err != nil {
		writeError(x, http.StatusBadRequest, "invalid_erasure", err.Error(), field)
		return
	}
	eraser, err := ops.NewEraser(ops.EraseConfig{
		Redis: s.cfg.Redis, Retention: cfg.Delivery.AttemptLogRetention, By: "api", Now: s.cfg.Now,
		Shards: cfg.Redis.Served(),
	})
	if err != nil {
		unavailable(x, "Redis is unavailable")
		return
	}
	e, err := eraser.Start(x.context(), sub)
	if err != nil {
		unavailable(x, "Redis is unavailable")
		return
	}
	go func() {
		// The request's context ends with the answer; the erasure does not.
		_, err := eraser.Run(context.Background(), e, sub)
		if err != nil && !errors.Is(err, ops.ErrErasureBusy) {
			// The identifier is never logged: the erasure's id says which.
			s.cfg.Logger.Error("erasure stopped; ask for it again to resume it", "erasure", e.ID, "error", err)
		}
	}()
	writeJSON(x, http.StatusAccepted, erasureAccepted{ID: e.ID, Status: e.Status})
}

// getErasure is GET /v1/erasures/{id}.
func (s *Server) getErasure(w http.ResponseWriter, r *http.Request) {
	x := stdExchange{w, r}
	if !s.authorized(x, s.cfg.Config.Load().API.Keys) {
		return
	}
	e, err := s.store.GetErasure(x.context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(x, http.StatusNotFound, "not_found", "no erasure "+r.PathValue("id"), "")
	case err != nil:
		unavailable(x, "Redis is unavailable")
	default:
		writeJSON(x, http.StatusOK, e)
	}
}
