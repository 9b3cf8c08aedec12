package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/stacktest"
	"github.com/postbackhq/postback/internal/version"
	"github.com/postbackhq/postback/internal/wire"
)

// cliResult is what one run of the CLI printed, and its exit code.
type cliResult struct {
	code           int
	stdout, stderr string
}

// partnersRun runs the CLI as a user would, with args after "postback".
func partnersRun(t *testing.T, args ...string) cliResult {
	t.Helper()
	var out, errOut strings.Builder
	code := runSerial(append([]string{"postback"}, args...), &out, &errOut)
	return cliResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

// cliMu serializes runs of the CLI inside the test binary: urfave/cli
// applies its global HelpFlag to every command's flag set, a data race when
// two apps run at once in one process (go test -race finds it). The
// program itself runs one app per process.
var cliMu sync.Mutex

func runSerial(args []string, stdout, stderr io.Writer) int {
	cliMu.Lock()
	defer cliMu.Unlock()
	return run(args, stdout, stderr)
}

// partnersFile writes content to name in a fresh directory and returns its path.
func partnersFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// partnersSecret is the signing key of the test config, raw.
const partnersSecret = "partners-test-signing-secret"

// partnersYAML has two partners; PARTNER is the base URL they are sent to.
const partnersYAML = `api:
  keys: ["0123456789abcdef0123"]
delivery:
  allow_private_networks: true
partners:
  - id: acme
    events: [install, purchase]
    require: [click_id]
    url: "PARTNER/acme?click_id={click_id}&goal={event|map:install=1,purchase=2}&sum={revenue|default:0}&dlv={delivery_id}"
    headers: {X-Api-Token: "tok-0123456789", X-Campaign: "{campaign}"}
    retry: {max_attempts: 5, max_age: 1h}
    rate_limit: 100/s
    concurrency: 4
  - id: insights
    events: [purchase]
    match: all
    method: POST
    url: "PARTNER/insights/v1"
    body: '{"event":"{event}","amount":{revenue|json},"email":"{email}"}'
    signing: {scheme: standard-webhooks, secrets: ["whsec_` + "cGFydG5lcnMtdGVzdC1zaWduaW5nLXNlY3JldA==" + `"]}
    privacy: {require_consent: true}
`

const purchaseJSON = `{"id": "evt-p1", "name": "purchase", "timestamp": "2026-11-25T18:31:21Z",
 "click_id": "abc 1", "attribution": {"partner": "acme", "campaign": "winter"},
 "user": {"email": "a@example.com"}, "revenue": {"amount": "1.99", "currency": "USD"}}`

type partnersBundle struct {
	config, event string
	partner       *stacktest.Partner
}

func setupPartners(t *testing.T) partnersBundle {
	t.Helper()
	p := stacktest.NewPartner(t)
	return partnersBundle{
		config:  partnersFile(t, "postback.yaml", strings.ReplaceAll(partnersYAML, "PARTNER", p.URL)),
		event:   partnersFile(t, "purchase.json", purchaseJSON),
		partner: p,
	}
}

func TestPartnersList_Table(t *testing.T) {
	b := setupPartners(t)
	r := partnersRun(t, "-c", b.config, "--redis-url", "redis://127.0.0.1:1/0", "partners", "list", "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	host := strings.TrimPrefix(b.partner.URL, "http://")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 3, r.stdout)
	require.Equal(t, []string{"ID", "ENABLED", "EVENTS", "MATCH", "METHOD", "HOST", "SIGNING", "RATE", "LIMIT", "CONCURRENCY", "RETRY", "PAUSED"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"acme", "yes", "install,purchase", "attributed", "GET", host, "no", "100/s", "4", "5", "attempts", "/", "1h", "?"}, strings.Fields(lines[1]))
	require.Equal(t, []string{"insights", "yes", "purchase", "all", "POST", host, "yes", "-", "-", "10", "attempts", "/", "24h", "?"}, strings.Fields(lines[2]))
	require.Equal(t, "postback: pauses not shown: cannot reach Redis at redis://127.0.0.1:1/0\n", r.stderr)
	// Columns line up.
	require.Equal(t, strings.Index(lines[0], "HOST"), strings.Index(lines[1], host))
	require.Equal(t, strings.Index(lines[0], "RETRY"), strings.Index(lines[2], "10 attempts"))
}

func TestPartnersList_JSON(t *testing.T) {
	b := setupPartners(t)
	r := partnersRun(t, "-c", b.config, "partners", "list", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
	require.Len(t, rows, 2)
	require.Equal(t, "acme", rows[0]["id"])
	require.Equal(t, []any{"click_id"}, rows[0]["require"])
	require.Equal(t, "100/s", rows[0]["rate_limit"])
	require.Equal(t, float64(5), rows[0]["max_attempts"])
	require.Equal(t, true, rows[1]["signing"])
	require.Equal(t, true, rows[1]["require_consent"])
}

func TestPartnersValidate_ReportsEveryProblem(t *testing.T) {
	cfg := partnersFile(t, "postback.yaml", `partners:
  - id: acme
    url: "https://pb.acme.example/c?click_id={clik_id}"
    retry: {max_attempts: 0}
  - id: b
    url: "https://b.example/?x={click_id|nope}"
    when: 'revenue >'
`)
	r := partnersRun(t, "-c", cfg, "partners", "validate")
	require.Equal(t, 1, r.code)
	require.Equal(t, cfg+`:3:46: partner "acme": url: unknown macro {clik_id} (did you mean {click_id}?)
`+cfg+`:4:27: partner "acme": retry.max_attempts: "0" is not a whole number >= 1
`+cfg+`:6:42: partner "b": url: unknown filter "nope" in {click_id|nope}
`+cfg+`:7:20: partner "b": when: unexpected token EOF
`, r.stdout)
	require.Equal(t, "postback: "+cfg+": 4 problems\n", r.stderr)
}

func TestPartnersValidate_OKWithWarnings(t *testing.T) {
	b := setupPartners(t)
	r := partnersRun(t, "-c", b.config, "partners", "validate")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Equal(t, []string{
		b.config + ":4:27: warning: delivery.allow_private_networks: the SSRF guard is off: postbacks may reach loopback, private and cloud metadata addresses; for local tests only",
		b.config + `:9:10: warning: partner "acme": url: plain http:// sends conversions unencrypted; use https://`,
		b.config + `:18:10: warning: partner "insights": url: plain http:// sends conversions unencrypted; use https://`,
		b.config + `:20:52: warning: partner "insights": signing.secrets: secret written in the file; read it with ${env:NAME} instead`,
		b.config + ": 2 partners OK (4 warnings)",
	}, lines)
	require.Empty(t, r.stderr)
}

func TestPartnersRender_GET(t *testing.T) {
	b := setupPartners(t)
	id := wire.DeliveryID("evt-p1", "acme")
	r := partnersRun(t, "-c", b.config, "partners", "render", "--partner", "acme", "--event", b.event, "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, `partner:  acme
delivery: `+id+`
routing:  a worker would send this

GET `+b.partner.URL+`/acme?click_id=abc+1&goal=2&sum=1.99&dlv=`+id+`
Idempotency-Key: `+id+`
User-Agent: postback/`+version.Version+`
X-Api-Token: <masked, 14 characters; --show-secrets prints it>
X-Campaign: winter
`, r.stdout)
	require.Empty(t, b.partner.Requests(), "render sends nothing")

	r = partnersRun(t, "-c", b.config, "partners", "render", "--partner", "acme", "--event", b.event, "-o", "table", "--show-secrets")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "\nX-Api-Token: tok-0123456789\n")
}

func TestPartnersRender_SignedJSON(t *testing.T) {
	b := setupPartners(t)
	before := time.Now().Unix()
	r := partnersRun(t, "-c", b.config, "partners", "render", "-p", "insights", "-e", b.event, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got struct {
		Partner    string   `json:"partner"`
		DeliveryID string   `json:"delivery_id"`
		Send       bool     `json:"send"`
		Notes      []string `json:"notes"`
		Request    struct {
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
			Body    string            `json:"body"`
		} `json:"request"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	id := wire.DeliveryID("evt-p1", "insights")
	require.Equal(t, id, got.DeliveryID)
	require.True(t, got.Send)
	require.Equal(t, []string{"no consent in the event: device ids, ip and email render empty for this partner"}, got.Notes)
	require.Equal(t, "POST", got.Request.Method)
	require.Equal(t, b.partner.URL+"/insights/v1", got.Request.URL)
	require.Equal(t, `{"event":"purchase","amount":1.99,"email":""}`, got.Request.Body)

	h := got.Request.Headers
	require.Equal(t, "application/json", h["Content-Type"])
	require.Equal(t, id, h["Idempotency-Key"])
	require.Equal(t, id, h["Webhook-Id"])
	ts, err := strconv.ParseInt(h["Webhook-Timestamp"], 10, 64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, ts, before)
	mac := hmac.New(sha256.New, []byte(partnersSecret))
	mac.Write([]byte(id + "." + h["Webhook-Timestamp"] + "." + got.Request.Body))
	require.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), h["Webhook-Signature"])
	require.NotContains(t, r.stdout, "cGFydG5lcnMtdGVzdC1zaWduaW5nLXNlY3JldA", "secrets are never printed")
}

// TestPartnersRender_NormalizesAsIntake: render shows what a partner would
// receive, so the event is normalised as intake would, and a dropped field
// is a note; under api.strict it is refused.
func TestPartnersRender_NormalizesAsIntake(t *testing.T) {
	b := setupPartners(t)
	ev := partnersFile(t, "sloppy.json", `{"id":"evt-n1","name":"purchase","consent":{"granted":true},
 "device":{"ip":"999.1.1.1"},"user":{"email":" A@Example.com "},"revenue":{"amount":"1.99","currency":"USD"}}`)
	r := partnersRun(t, "-c", b.config, "partners", "render", "-p", "insights", "-e", ev, "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got struct {
		Notes   []string `json:"notes"`
		Request struct {
			Body string `json:"body"`
		} `json:"request"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	require.Equal(t, []string{"device.ip: not an IPv4 or IPv6 address; dropped (as intake would)"}, got.Notes)
	require.Equal(t, `{"event":"purchase","amount":1.99,"email":"a@example.com"}`, got.Request.Body)

	strict, err := os.ReadFile(b.config)
	require.NoError(t, err)
	cfg := partnersFile(t, "strict.yaml", strings.Replace(string(strict), "api:\n", "api:\n  strict: true\n", 1))
	r = partnersRun(t, "-c", cfg, "partners", "render", "-p", "insights", "-e", ev)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, `device.ip: "999.1.1.1" is not an IPv4 or IPv6 address (api.strict)`)
}

func TestPartnersRender_SaysWhatRoutingWouldDo(t *testing.T) {
	b := setupPartners(t)
	tests := []struct {
		name, partner, event, want string
	}{
		{"require not met", "acme", `{"id":"e1","name":"install","attribution":{"partner":"acme"}}`,
			"skipped: require: click_id is missing"},
		{"not attributed", "acme", `{"id":"e2","name":"install","click_id":"c","attribution":{"partner":"other"}}`,
			`not routed: match attributed and attribution.partner is "other", not "acme"`},
		{"event not listed", "insights", `{"id":"e3","name":"install"}`,
			`not routed: event "install" is not in events [purchase]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := partnersFile(t, "event.json", tt.event)
			r := partnersRun(t, "-c", b.config, "partners", "render", "-p", tt.partner, "-e", ev, "-o", "table")
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "\nrouting:  a worker would NOT send this: "+tt.want+"\n")
		})
	}
}

func TestPartnersRender_BadEvent(t *testing.T) {
	b := setupPartners(t)
	ev := partnersFile(t, "event.json", `{"id":"e1","nme":"install"}`)
	r := partnersRun(t, "-c", b.config, "partners", "render", "-p", "acme", "-e", ev)
	require.Equal(t, 1, r.code)
	require.Equal(t, "postback: event "+ev+": nme: unknown field (check its spelling; free keys go in params)\n", r.stderr)
}

func TestPartnersTest_Delivers(t *testing.T) {
	b := setupPartners(t)
	b.partner.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"accepted"}` + strings.Repeat(".", 1000)))
	}
	r := partnersRun(t, "-c", b.config, "partners", "test", "-p", "insights", "-e", b.event, "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)

	got := b.partner.Requests()
	require.Len(t, got, 1)
	id := wire.DeliveryID("evt-p1", "insights")
	require.Equal(t, "POST", got[0].Method)
	require.Equal(t, "/insights/v1", got[0].URL)
	require.Equal(t, `{"event":"purchase","amount":1.99,"email":""}`, got[0].Body)
	require.Equal(t, id, got[0].Header.Get("Idempotency-Key"))
	require.Equal(t, "postback/"+version.Version, got[0].Header.Get("User-Agent"))
	mac := hmac.New(sha256.New, []byte(partnersSecret))
	mac.Write([]byte(id + "." + got[0].Header.Get("Webhook-Timestamp") + "." + got[0].Body))
	sig := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	require.Equal(t, sig, got[0].Header.Get("Webhook-Signature"))

	// What it printed is what the partner received, then the answer.
	require.Contains(t, r.stdout, "\nWebhook-Signature: "+sig+"\n")
	require.Contains(t, r.stdout, "\nstatus:   200 OK\n")
	require.Regexp(t, `\nlatency:  [0-9.]+(µs|ms|s)\n`, r.stdout)
	require.Contains(t, r.stdout, "\noutcome:  delivered (HTTP 200)\n")
	require.Contains(t, r.stdout, "\nresponse (first 512 bytes):\n"+`{"status":"accepted"}`+strings.Repeat(".", 512-21)+"\n")
}

func TestPartnersTest_RejectedExitsOne(t *testing.T) {
	b := setupPartners(t)
	b.partner.Respond = func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such campaign", http.StatusNotFound)
	}
	r := partnersRun(t, "-c", b.config, "partners", "test", "-p", "acme", "-e", b.event, "-o", "json")
	require.Equal(t, 1, r.code)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	require.Equal(t, float64(404), got["status"])
	require.Equal(t, "rejected", got["outcome"])
	require.Equal(t, "HTTP 404", got["outcome_reason"])
	require.Equal(t, "no such campaign\n", got["response"])
	require.Equal(t, "postback: partner \"acme\": test postback not delivered: rejected (HTTP 404)\n", r.stderr)
	require.Len(t, b.partner.Requests(), 1)
}

// With the SSRF guard on, a loopback partner is refused before any byte
// leaves: the same guard as the workers.
func TestPartnersTest_GuardBlocksLoopback(t *testing.T) {
	b := setupPartners(t)
	guarded := partnersFile(t, "guarded.yaml", strings.Replace(
		strings.ReplaceAll(partnersYAML, "PARTNER", b.partner.URL),
		"allow_private_networks: true", "allow_private_networks: false", 1))
	r := partnersRun(t, "-c", guarded, "partners", "test", "-p", "acme", "-e", b.event, "-o", "table")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "\nstatus:   no response\n")
	require.Regexp(t, `\noutcome:  blocked \(.*127\.0\.0\.1.*\)\n`, r.stdout)
	require.Regexp(t, `^postback: partner "acme": test postback not delivered: blocked \(`, r.stderr)
	require.Empty(t, b.partner.Requests())
}

// render says which lifecycle rule would hold the event back, and why.
func TestPartnersRender_SaysWhatLifecycleRulesWouldDo(t *testing.T) {
	cfg := partnersFile(t, "postback.yaml", `partners:
  - id: net
    url: "https://net.example/pb?c={click_id}&tx={transaction_id}&s={status|map:approved=1,pending=2,rejected=3}"
    order_by: click_id
    delay: 5m
    cancel_on_reject: true
    window: 7d
    dedup: {key: "{click_id}:{event}:{transaction_id}"}
`)
	ev := partnersFile(t, "event.json", `{"id":"e1","name":"purchase","click_id":"ck","transaction_id":"o1","status":"Rejected",
 "timestamp":"2026-11-30T00:00:00Z","attribution":{"partner":"net","click_time":"2026-11-29T00:00:00Z"}}`)
	r := partnersRun(t, "-c", cfg, "partners", "render", "-p", "net", "-e", ev, "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "routing:  a worker would send this\n"+
		"note:     order_by click_id: waits until every earlier delivery to this partner with click_id \"ck\" is final\n"+
		"note:     delay: held 5m before its first attempt\n"+
		"note:     cancel_on_reject: a rejection; if a delivery of transaction \"o1\" is still held, both are skipped (rejected_before_send) and nothing is sent\n"+
		"note:     dedup: key \"ck:purchase:o1\"; skipped (duplicate_conversion) if another delivery of it was delivered in the last 720h or is being attempted\n")
	require.Contains(t, r.stdout, "GET https://net.example/pb?c=ck&tx=o1&s=3\n")

	late := partnersFile(t, "late.json", `{"id":"e2","name":"purchase","timestamp":"2026-11-30T00:00:00Z","attribution":{"partner":"net","click_time":"2026-11-01T00:00:00Z"}}`)
	r = partnersRun(t, "-c", cfg, "partners", "render", "-p", "net", "-e", late, "-o", "table")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "routing:  a worker would NOT send this: skipped: outside_window: 696h after the click, window 168h\n")
}
