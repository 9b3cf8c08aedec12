package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/postbackhq/postback/internal/ops"
)

// maxPauseBody bounds the body of a pause request: {"reason": "..."}.
const maxPauseBody = 4 << 10

// pauseRouteOf returns the partner id of a pause request, the one route
// besides intake that reads a body (see Server.Serve), matched as the
// net/http mux matches POST /v1/partners/{id}/pause: ok is false for any
// other request.
func pauseRouteOf(method, path []byte) (id string, ok bool) {
	if string(method) != http.MethodPost {
		return "", false
	}
	rest, ok := strings.CutPrefix(string(path), "/v1/partners/")
	if !ok {
		return "", false
	}
	seg, ok := strings.CutSuffix(rest, "/pause")
	if !ok || seg == "" || strings.Contains(seg, "/") {
		return "", false
	}
	id, err := url.PathUnescape(seg)
	return id, err == nil
}

// pauseAnswer is the answer to a pause or a resume.
type pauseAnswer struct {
	Partner string     `json:"partner"`
	Paused  *ops.Pause `json:"paused"`               // nil once resumed
	Was     *bool      `json:"was_paused,omitempty"` // resume only
}

// pausePartner is POST /v1/partners/{id}/pause on net/http.
func (s *Server) pausePartner(w http.ResponseWriter, r *http.Request) {
	s.pause(stdExchange{w, r}, r.PathValue("id"))
}

// pause is POST /v1/partners/{id}/pause, on either server: a body over
// 4 KiB, announced or chunked, is refused with 413.
func (s *Server) pause(x exchange, id string) {
	if !s.authorized(x, s.cfg.Config.Load().API.Keys) {
		x.leaveBody()
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	raw, err := x.body(maxPauseBody, s.cfg.BodyTimeout)
	switch {
	case errors.Is(err, errTooLarge):
		x.leaveBody()
		writeError(x, http.StatusRequestEntityTooLarge, "body_too_large", "a pause's body is at most 4 KiB", "")
		return
	case err != nil:
		x.leaveBody()
		writeError(x, http.StatusBadRequest, "bad_request", "body not read: "+err.Error(), "")
		return
	case len(strings.TrimSpace(string(raw))) > 0:
		if err := json.Unmarshal(raw, &body); err != nil {
			writeError(x, http.StatusBadRequest, "bad_request", "body: want {\"reason\": \"...\"}", "reason")
			return
		}
	}
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
