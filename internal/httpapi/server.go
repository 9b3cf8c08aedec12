package httpapi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/metrics"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
)

// Config configures the API.
type Config struct {
	// Client enqueues events. Required.
	Client *intake.Client
	// Config is the config in force (keys, limits). Required.
	Config *config.Live
	// Redis answers /readyz, which writes one small key to it (readyKey)
	// at most once a second. Required.
	Redis redis.UniversalClient
	// InsecureNoAuth serves without API keys. Default false: with no keys
	// configured, New refuses.
	InsecureNoAuth bool
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// StoreTimeout bounds how long one request may wait for Redis to store
	// its events; past it the answer is 503 with Retry-After, so a client
	// never hangs on a paused or failing Redis. Default 3s.
	StoreTimeout time.Duration
	// BodyTimeout bounds the wait for more of a request body: when none
	// of it arrives for this long the answer is 408 and the connection
	// closes, so a client that announces a body and does not send it
	// holds a connection no longer. Default 5s.
	BodyTimeout time.Duration
}

// ErrNoKeys is returned by New when the config has no API keys and
// InsecureNoAuth is not set.
var ErrNoKeys = errors.New("api.keys is empty: the API would accept events from anyone; add a key or pass --insecure-no-auth")

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	cfg      Config
	store    *store.Store
	mux      *http.ServeMux
	probe    writeProbe // /readyz's
	failures failureLog // intake's, in the log

	fast fastServer // Serve's
}

// New returns the API handler.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil || cfg.Config == nil || cfg.Redis == nil {
		return nil, errors.New("httpapi: Config needs Client, Config and Redis")
	}
	if api := cfg.Config.Load().API; len(api.KeyProblems) > 0 {
		return nil, fmt.Errorf("%s (the API needs its keys; or pass --insecure-no-auth with no keys configured)", api.KeyProblems[0])
	} else if len(api.Keys) == 0 && !cfg.InsecureNoAuth {
		return nil, ErrNoKeys
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.StoreTimeout = cmp.Or(cfg.StoreTimeout, 3*time.Second)
	cfg.BodyTimeout = cmp.Or(cfg.BodyTimeout, 5*time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg: cfg, store: store.NewSharded(cfg.Redis, cfg.Config.Load().Redis.Served()), mux: http.NewServeMux(),
		probe:    writeProbe{rdb: cfg.Redis, now: cfg.Now},
		failures: failureLog{logger: cfg.Logger, now: cfg.Now},
	}
	s.mux.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) { s.intake(stdExchange{w, r}, eventsRoute) })
	s.mux.HandleFunc("POST /v1/events/batch", func(w http.ResponseWriter, r *http.Request) { s.intake(stdExchange{w, r}, batchRoute) })
	s.mux.HandleFunc("GET /v1/deliveries/{id}", func(w http.ResponseWriter, r *http.Request) {
		if x := (stdExchange{w, r}); s.authorized(x, s.cfg.Config.Load().API.Keys) {
			s.getDelivery(x, r.PathValue("id"))
		}
	})
	s.mux.HandleFunc("POST /v1/partners/{id}/pause", s.pausePartner)
	s.mux.HandleFunc("POST /v1/partners/{id}/resume", s.resumePartner)
	s.mux.HandleFunc("POST /v1/erasures", s.postErasure)
	s.mux.HandleFunc("GET /v1/erasures/{id}", s.getErasure)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(stdExchange{w, r}, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", metrics.Handler())
	return s, nil
}

// Handle adds a route. On Serve, a route added here is passed no request
// body: only the intake routes, a partner's pause and an erasure read one
// (see Serve).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// intake runs an intake route: a POST of events, once its headers pass
// screening.
func (s *Server) intake(x exchange, r *intakeRoute) {
	cfg := s.cfg.Config.Load()
	if why := s.screen(x, r, cfg); why != admitted {
		s.refuse(x, r, why)
		return
	}
	r.post(s, x, cfg)
}

// authorized checks the key, answering 401 when it is missing or wrong.
func (s *Server) authorized(x exchange, keys []string) bool {
	if !s.keyValid(x, keys) {
		s.refuse(x, nil, refusedKey)
		return false
	}
	return true
}

// keyValid checks the bearer key in constant time against every
// configured key.
func (s *Server) keyValid(h headers, keys []string) bool {
	if len(keys) == 0 && s.cfg.InsecureNoAuth {
		return true
	}
	token, ok := bearerToken(h)
	return ok && validKey(token, keys)
}

// bearerToken is the token of the request's Authorization header, which
// must be sent once and name the Bearer scheme, in any case (RFC 7235: a
// scheme is case-insensitive).
func bearerToken(h headers) (string, bool) {
	if h.headerCount("Authorization") != 1 {
		return "", false // which one would count?
	}
	scheme, token, ok := strings.Cut(h.header("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	return token, token != ""
}

// validKey compares SHA-256 digests, so neither the keys' lengths nor
// their contents show in the time taken, and checks every key so timing
// does not tell which one matched.
func validKey(token string, keys []string) bool {
	t := sha256.Sum256([]byte(token))
	found := 0
	for _, k := range keys {
		h := sha256.Sum256([]byte(k))
		found |= subtle.ConstantTimeCompare(t[:], h[:])
	}
	return found == 1
}

func (s *Server) postEvent(x exchange, cfg *config.Config) {
	body, ok := s.readBody(x, cfg.API.MaxBodyBytes)
	if !ok {
		return
	}
	ev, err := event.DecodeEvent(body, s.cfg.Now())
	if err != nil {
		received(resultRejected)
		writeEventError(x, err)
		return
	}
	ctx, cancel := context.WithTimeout(x.context(), s.cfg.StoreTimeout)
	defer cancel()
	if s.cfg.Client.Traced() {
		ctx = intake.WithCaller(ctx, x.header("Traceparent"))
	}
	rc, err := s.cfg.Client.Enqueue(ctx, ev)
	if err != nil {
		s.enqueueFailed(x, err)
		return
	}
	s.failures.stored()
	status := http.StatusAccepted
	if rc.Duplicate {
		received(resultDuplicate)
		status = http.StatusOK
	} else {
		received(resultAccepted)
	}
	dropped(rc.Warnings)
	writeJSON(x, status, rc)
}

// enqueueFailed answers a failed Enqueue: 400 for an invalid event, else
// 503: nothing is reported accepted that was not stored, nor reported
// unstored that may have been.
func (s *Server) enqueueFailed(x exchange, err error) {
	var fe *event.FieldError
	if errors.As(err, &fe) {
		received(resultRejected)
		writeEventError(x, err)
		return
	}
	received(resultUnavailable)
	s.storeFailed(x, err)
	unavailable(x, unconfirmed[whyUnconfirmed(err)].single)
}

// storeFailed records that Redis did not store a request's events, for
// err: in the log's summary and for /readyz; unless the client hung up,
// which is no fault of Redis.
func (s *Server) storeFailed(x exchange, err error) {
	if x.gone() {
		s.cfg.Logger.Debug("events abandoned by the client", "err", err)
		return
	}
	s.probe.failed()
	s.failures.failed(err)
}

// unconfirmed says why intake answers 503, in the words of a single event's
// answer and of a batch's, the most specific reason first; the last one
// is any other failure.
var unconfirmed = []struct {
	err           error
	single, batch string
}{
	{intake.ErrNotReplicated,
		"the event is on the Redis master but not yet on the replicas api.wait_replicas asks for; retry later: " +
			"a repeat is answered as its duplicate, or stores it again if a failover lost it",
		"events of the batch are on the Redis master but not yet on the replicas api.wait_replicas asks for; " +
			"retry the batch later (events already stored come back as duplicates)"},
	{wire.ErrNewerClaim,
		"this event was first received by a newer postback whose record of it this API cannot read; retry later: an upgraded API answers it",
		"events of the batch were first received by a newer postback whose record of them this API cannot read; " +
			"retry the batch later: an upgraded API answers it (events already stored come back as duplicates)"},
	// A write that Redis did not confirm may still have happened (a
	// timeout, a connection lost after the command went out): only the
	// repeat, answered as a duplicate or stored then, tells.
	{nil,
		"Redis is unavailable and did not confirm storing the event, which may have been stored or not; " +
			"repeat it later with the same id: if it was stored, the repeat is answered as its duplicate",
		"Redis is unavailable and did not confirm storing every event of the batch; any of them may have been stored or not; " +
			"repeat the batch later with the same ids: events that were stored come back as duplicates"},
}

// whyUnconfirmed is the index in unconfirmed of the reason for err.
func whyUnconfirmed(err error) int {
	for i, u := range unconfirmed {
		if u.err == nil || errors.Is(err, u.err) {
			return i
		}
	}
	return len(unconfirmed) - 1
}

// unavailable answers 503 with Retry-After.
func unavailable(x exchange, msg string) {
	x.setHeader("Retry-After", retryAfterSeconds)
	writeError(x, http.StatusServiceUnavailable, "unavailable", msg, "")
}

// retryAfterSeconds is the Retry-After of a 503: Redis outages that a
// client can ride out are short; a longer one just repeats.
const retryAfterSeconds = "1"

// The result label values of metrics.EventsReceived.
const (
	resultAccepted    = "accepted"
	resultDuplicate   = "duplicate"
	resultRejected    = "rejected"
	resultUnavailable = "unavailable"
)

// receivedCounters holds the counter of each result, looked up once.
var receivedCounters = func() map[string]prometheus.Counter {
	m := make(map[string]prometheus.Counter)
	for _, r := range []string{resultAccepted, resultDuplicate, resultRejected, resultUnavailable} {
		m[r] = metrics.EventsReceived.WithLabelValues(r)
	}
	return m
}()

func received(result string) {
	c, ok := receivedCounters[result]
	if !ok {
		c = metrics.EventsReceived.WithLabelValues(result)
	}
	c.Inc()
}

// dropped counts the fields intake dropped from a stored event (a
// duplicate's receipt has no warnings). The count is kept here, with the
// other intake series, rather than in intake: the Go client's process
// serves no /metrics, and dispatcher stays free of Prometheus.
func dropped(warnings []event.Warning) {
	for _, w := range warnings {
		metrics.FieldsDropped.WithLabelValues(w.Field).Inc()
	}
}

func (s *Server) getDelivery(x exchange, id string) {
	rec, st, err := s.store.GetAny(x.context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(x, http.StatusNotFound, "not_found", "no delivery "+id, "")
		return
	}
	if err != nil {
		unavailable(x, "Redis is unavailable")
		return
	}
	attempts, err := st.Attempts(x.context(), id)
	if err != nil {
		unavailable(x, "Redis is unavailable")
		return
	}
	writeJSON(x, http.StatusOK, struct {
		*store.Record
		History []store.Attempt `json:"attempts_history"`
	}{rec, attempts})
}

// readyz answers 200 when events can be stored: Redis answers, takes a
// write, and has the replicas api.wait_replicas asks for; else 503 saying
// which.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	x := stdExchange{w, r}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Redis.Ping(ctx).Err(); err != nil {
		unavailable(x, "Redis is unreachable")
		return
	}
	if err := s.probe.check(ctx); err != nil {
		unavailable(x, s.probe.why(err))
		return
	}
	cfg := s.cfg.Config.Load()
	if n := cfg.API.WaitReplicas; n > 0 {
		// Every event would be answered 503: say why here too.
		have, err := connectedReplicas(ctx, s.cfg.Redis)
		switch {
		case err != nil:
			unavailable(x, fmt.Sprintf("api.wait_replicas is %d but the Redis replication state cannot be read: %v", n, err))
			return
		case have < n:
			unavailable(x, fmt.Sprintf("api.wait_replicas is %d but the Redis master has %d connected replica(s): events are answered 503 until enough are", n, have))
			return
		}
	}
	writeJSON(x, http.StatusOK, map[string]any{"status": "ready", "partners": len(cfg.Partners)})
}

// connectedReplicas reads connected_slaves from INFO replication.
func connectedReplicas(ctx context.Context, rdb redis.UniversalClient) (int, error) {
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO replication has no connected_slaves")
}

// isJSON reports whether ct names JSON: application/json or a +json type.
func isJSON(ct string) bool {
	switch ct {
	case "":
		return true // curl -d without -H; the body must still parse as JSON
	case "application/json":
		return true // the usual case, without parsing it
	}
	mt, ok := mediaType(ct)
	return ok && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// mediaType is the media type ct names, if it names no charset or UTF-8:
// JSON is UTF-8 (RFC 8259), and a body said to be in another charset
// would be read as something it is not.
func mediaType(ct string) (string, bool) {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", false
	}
	return mt, true
}

// readBody reads the body, at most limit bytes, answering 413 beyond, 408
// when it stops arriving and 400 when it cannot be read.
func (s *Server) readBody(x exchange, limit int64) ([]byte, bool) {
	body, err := x.body(limit, s.cfg.BodyTimeout)
	if err == nil {
		return body, true
	}
	x.leaveBody()
	var ne net.Error
	switch {
	case errors.Is(err, errTooLarge):
		writeError(x, http.StatusRequestEntityTooLarge, "body_too_large", errTooLarge.Error(), "")
	case errors.As(err, &ne) && ne.Timeout():
		writeError(x, http.StatusRequestTimeout, "timeout", fmt.Sprintf("the request body stopped arriving: none of it came for %v", s.cfg.BodyTimeout), "")
	default:
		writeError(x, http.StatusBadRequest, "bad_request", "could not read the request body", "")
	}
	return nil, false
}

func writeEventError(x exchange, err error) {
	var fe *event.FieldError
	if errors.As(err, &fe) {
		writeError(x, http.StatusBadRequest, "invalid_event", fe.Error(), fe.Field)
		return
	}
	writeError(x, http.StatusBadRequest, "invalid_event", err.Error(), "")
}

// errorDetail is one error: a stable code, a message for people and the
// offending field of an event when there is one.
type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

func writeError(x exchange, status int, code, msg, field string) {
	writeJSON(x, status, errorBody{errorDetail{code, msg, field}})
}

// writeJSON answers status with v in JSON.
func writeJSON(x exchange, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a bug makes an answer unmarshalable; say so in the shape
		// every error has.
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{errorDetail{Code: "internal", Message: "internal error: " + err.Error()}})
	}
	x.answer(status, append(b, '\n'))
}
