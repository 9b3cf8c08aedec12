package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/postbackhq/postback/internal/ops"
)

// maxPauseBody bounds the body of a pause request: {"reason": "..."}.
const maxPauseBody = 4 << 10

// isPauseRoute reports whether a request is a pause, the one route besides
// intake that reads a body (see Server.screenFast).
func isPauseRoute(method, path []byte) bool {
	p := string(path)
	return string(method) == http.MethodPost && strings.HasPrefix(p, "/v1/partners/") && strings.HasSuffix(p, "/pause")
}

// pauseAnswer is the answer to a pause or a resume.
type pauseAnswer struct {
	Partner string     `json:"partner"`
	Paused  *ops.Pause `json:"paused"`               // nil once resumed
	Was     *bool      `json:"was_paused,omitempty"` // resume only
}

// pausePartner is POST /v1/partners/{id}/pause.
func (s *Server) pausePartner(w http.ResponseWriter, r *http.Request) {
	x := stdExchange{w, r}
	if !s.authorized(x, s.cfg.Config.Load().API.Keys) {
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxPauseBody+1))
	switch {
	case err != nil:
		writeError(x, http.StatusBadRequest, "bad_request", "body not read: "+err.Error(), "")
		return
	case len(raw) > maxPauseBody:
		writeError(x, http.StatusRequestEntityTooLarge, "body_too_large", "a pause's body is at most 4 KiB", "")
		return
	case len(strings.TrimSpace(string(raw))) > 0:
		if err := json.Unmarshal(raw, &body); err != nil {
			writeError(x, http.StatusBadRequest, "bad_request", "body: want {\"reason\": \"...\"}", "reason")
			return
		}
	}
	id := r.PathValue("id")
	p, err := ops.PausePartner(x.context(), s.cfg.Redis, s.cfg.Config.Load(), id, body.Reason, "api", s.cfg.Now())
	if s.pauseFailed(x, id, err) {
		return
	}
	writeJSON(x, http.StatusOK, pauseAnswer{Partner: id, Paused: &p})
}

// resumePartner is POST /v1/partners/{id}/resume.
func (s *Server) resumePartner(w http.ResponseWriter, r *http.Request) {
	x := stdExchange{w, r}
	if !s.authorized(x, s.cfg.Config.Load().API.Keys) {
		return
	}
	id := r.PathValue("id")
	was, err := ops.ResumePartner(x.context(), s.cfg.Redis, s.cfg.Config.Load(), id, s.cfg.Now())
	if s.pauseFailed(x, id, err) {
		return
	}
	writeJSON(x, http.StatusOK, pauseAnswer{Partner: id, Was: &was})
}

// pauseFailed answers err of a pause or a resume, if any.
func (s *Server) pauseFailed(x exchange, id string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ops.ErrUnknownPartner):
		writeError(x, http.StatusNotFound, "not_found", "no partner "+id+" in the config", "")
	default:
		unavailable(x, "Redis is unavailable")
	}
	return true
}
