package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// contract checks real answers of a running API against api/openapi.yaml,
// so the document cannot drift from the code.
type contract struct {
	stack  *stacktest.Stack
	router routers.Router
}

func newContract(t *testing.T, s *stacktest.Stack) *contract {
	t.Helper()
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../api/openapi.yaml")
	require.NoError(t, err)
	require.True(t, doc.IsOpenAPI31OrLater(), "the document is OpenAPI 3.1")
	require.NoError(t, doc.Validate(ctx))
	doc.Servers = openapi3.Servers{{URL: s.API.URL}}
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return &contract{stack: s, router: router}
}

// check sends a request and validates the answer against the document;
// it returns the body.
func (c *contract) check(t *testing.T, method, path, contentType, body string, auth bool, want int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, c.stack.API.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+stacktest.APIKey)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, got)

	route, params, err := c.router.FindRoute(req)
	require.NoError(t, err, "%s %s is not in the document", method, path)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(got)
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), in), "%s %s %d: %s", method, path, resp.StatusCode, got)
	return got
}

func TestOpenAPI_ResponsesMatchTheDocument(t *testing.T) {
	t.Parallel()
	onBoth(t, testOpenAPIResponses)
}

func testOpenAPIResponses(t *testing.T, netHTTP bool) {
	s, _, _ := setupTwo(t, stacktest.Options{NetHTTP: netHTTP})
	c := newContract(t, s)
	const json = "application/json"
	ev := `{"id":"oa-1","name":"purchase","click_id":"c","attribution":{"partner":"acme_ads"},"revenue":{"amount":1.5,"currency":"USD"}}`
	c.check(t, "POST", "/v1/events", json, ev, true, 202)
	c.check(t, "POST", "/v1/events", json, ev, true, 200)
	// An invalid optional field is dropped, and the answer warns; a
	// required one is refused.
	got := c.check(t, "POST", "/v1/events", json, `{"id":"oa-2","name":"install","device":{"idfa":"x"}}`, true, 202)
	require.Contains(t, string(got), `"warnings":[{"field":"device.idfa",`)
	c.check(t, "POST", "/v1/events", json, `{"id":"oa-2b","name":"Install!","device":{"idfa":"x"}}`, true, 400)
	c.check(t, "POST", "/v1/events", json, ev, false, 401)
	c.check(t, "POST", "/v1/events", json, `{"id":"big","name":"install","click_id":"`+strings.Repeat("x", 70000)+`"}`, true, 413)
	c.check(t, "POST", "/v1/events", "text/plain", ev, true, 415)

	got = c.check(t, "POST", "/v1/events/batch", json, `{"events":[`+ev+`,{"id":"oa-3","name":"install","user":{"email":"x"}},{"id":"oa-4"}]}`, true, 200)
	require.Contains(t, string(got), `"warnings":[{"field":"user.email",`)
	c.check(t, "POST", "/v1/events/batch", "application/x-ndjson", `{"id":"oa-5","name":"install"}`+"\n", true, 200)
	var many bytes.Buffer
	for range intake.MaxBatch + 1 {
		many.WriteString("{}\n")
	}
	c.check(t, "POST", "/v1/events/batch", "application/x-ndjson", many.String(), true, 400)
	c.check(t, "POST", "/v1/events/batch", "text/csv", "a,b", true, 415)

	id := wire.DeliveryID("oa-1", "acme_ads")
	s.WaitStatus(t, id, retry.StatusDelivered, 10*time.Second)
	c.check(t, "GET", "/v1/deliveries/"+id, "", "", true, 200)
	c.check(t, "GET", "/v1/deliveries/"+wire.DeliveryID("nope", "acme_ads"), "", "", true, 404)
	c.check(t, "GET", "/v1/deliveries/"+id, "", "", false, 401)
	c.check(t, "POST", "/v1/partners/acme_ads/pause", json, `{"reason":"maintenance"}`, true, 200)
	paused, err := s.Store.Paused(context.Background())
	require.NoError(t, err)
	require.Equal(t, "maintenance", paused["acme_ads"].Reason, "the reason reaches the store on both servers")
	require.Equal(t, "api", paused["acme_ads"].By)
	c.check(t, "POST", "/v1/partners/acme_ads/pause", "", "", true, 200)
	c.check(t, "POST", "/v1/partners/acme_ads/pause", json, `{"reason":`, true, 400)
	c.check(t, "POST", "/v1/partners/nope/pause", "", "", true, 404)
	c.check(t, "POST", "/v1/partners/acme_ads/pause", "", "", false, 401)
	c.check(t, "POST", "/v1/partners/acme_ads/resume", "", "", true, 200)
	c.check(t, "POST", "/v1/partners/nope/resume", "", "", true, 404)
	c.check(t, "POST", "/v1/partners/acme_ads/resume", "", "", false, 401)
	er := erasureID(t, c.check(t, "POST", "/v1/erasures", json, `{"customer_user_id":"u-oa"}`, true, 202))
	waitErasure(t, s, er)
	c.check(t, "GET", "/v1/erasures/"+er, "", "", true, 200)
	c.check(t, "GET", "/v1/erasures/er_nope", "", "", true, 404)
	c.check(t, "GET", "/v1/erasures/"+er, "", "", false, 401)
	c.check(t, "POST", "/v1/erasures", json, `{"email":"a@example.com","device_id":"x"}`, true, 400)
	c.check(t, "POST", "/v1/erasures", json, `{"phone":"1"}`, true, 400)
	c.check(t, "POST", "/v1/erasures", json, `{"email":"a@example.com"}`, false, 401)
	c.check(t, "GET", "/healthz", "", "", false, 200)
	c.check(t, "GET", "/readyz", "", "", false, 200)
	c.check(t, "GET", "/metrics", "", "", false, 200)
}

func TestOpenAPI_UnavailableMatchesTheDocument(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs redis-server")
	}
	srv := redistest.Own(t, redistest.Options{})
	s, _, _ := setupTwo(t, stacktest.Options{RedisURL: srv.URL(0), NoWorker: true})
	c := newContract(t, s)
	srv.Close()
	c.check(t, "POST", "/v1/events", "application/json", `{"id":"u-1","name":"install"}`, true, 503)
	c.check(t, "POST", "/v1/events/batch", "application/json", `[{"id":"u-2","name":"install"},{"id":"u-3"}]`, true, 503)
	c.check(t, "GET", "/v1/deliveries/"+wire.DeliveryID("u-1", "everyone"), "", "", true, 503)
	c.check(t, "GET", "/readyz", "", "", false, 503)
}
