package config_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/version"
	"github.com/postbackhq/postback/internal/wire"
)

// renderPartner loads a one-partner config and returns the partner.
func renderPartner(t *testing.T, partnerYAML string) *config.Partner {
	t.Helper()
	cfg, err := config.Parse("render.yaml", []byte("partners:\n"+partnerYAML), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	require.Len(t, cfg.Partners, 1)
	return cfg.Partners[0]
}

// renderEvent decodes an event as the API does.
func renderEvent(t *testing.T, js string) *event.Event {
	t.Helper()
	ev, err := event.DecodeEvent([]byte(js), time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	return ev
}

const renderEventJSON = `{"id": "evt-r1", "name": "purchase", "timestamp": "2026-11-25T18:31:21Z", "app_id": "com.example.game",
 "click_id": "a b&c=d/é", "attribution": {"partner": "acme", "campaign": "winter sale"},
 "device": {"idfa": "6D92078A-8246-4BA4-AE5B-76104861E7DC", "gaid": "", "ip": "203.0.113.7", "os": "ios", "country": "US"},
 "user": {"customer_user_id": "u1", "email": "a@example.com"},
 "revenue": {"amount": "1.99", "currency": "USD"}, "consent": {"granted": false},
 "params": {"level": "7", "quote": "say \"hi\"\n"}}`

func TestPartner_Render_GET(t *testing.T) {
	t.Parallel()
	p := renderPartner(t, `  - id: acme
    url: "https://pb.acme.example/c/{campaign}?click_id={click_id}&goal={event|map:install=1,purchase=2}&sum={revenue|cents}&cur={currency|lower}&ts={timestamp|unix}&lvl={params.level}&gaid={gaid|default:none}&dlv={delivery_id}&n={attempt}"
    headers: {X-Campaign: "{campaign|upper}"}
`)
	ev := renderEvent(t, renderEventJSON)
	id := wire.DeliveryID(ev.ID, p.ID)
	r, err := p.Render(ev, id, 3)
	require.NoError(t, err)
	require.Equal(t, http.MethodGet, r.Method)
	require.Equal(t, "https://pb.acme.example/c/winter%20sale?click_id=a+b%26c%3Dd%2F%C3%A9&goal=2&sum=199&cur=usd&ts=1795631481&lvl=7&gaid=none&dlv="+id+"&n=3", r.URL)
	u, err := url.Parse(r.URL)
	require.NoError(t, err)
	require.Equal(t, "a b&c=d/é", u.Query().Get("click_id"), "a value never changes the query's structure")
	require.Nil(t, r.Body)
	require.Equal(t, http.Header{
		"X-Campaign":      {"WINTER SALE"},
		"User-Agent":      {"postback/" + version.Version},
		"Idempotency-Key": {id},
	}, r.Header)
}

func TestPartner_Render_JSONBody(t *testing.T) {
	t.Parallel()
	p := renderPartner(t, `  - id: acme
    method: POST
    url: "https://pb.acme.example/v1/conversions"
    body: |
      {"click": "{click_id}", "amount": {revenue|json}, "quote": "{params.quote}",
       "missing": {sub1|json}, "email": "{email|sha256}", "attempt": {attempt|json}}
`)
	ev := renderEvent(t, renderEventJSON)
	r, err := p.Render(ev, "dlv_x", 1)
	require.NoError(t, err)
	require.Equal(t, http.MethodPost, r.Method)
	require.Equal(t, "https://pb.acme.example/v1/conversions", r.URL)
	require.Equal(t, `{"click": "a b&c=d/é", "amount": 1.99, "quote": "say \"hi\"\n",
 "missing": null, "email": "08168cd80dfd534ab0f10af10f1303fe00af2d43ab5c1432360d137f8197e17a", "attempt": 1}
`, string(r.Body))
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	require.Equal(t, "dlv_x", r.Header.Get("Idempotency-Key"))
	require.Equal(t, "postback/"+version.Version, r.Header.Get("User-Agent"))
}

func TestPartner_Render_FormBody(t *testing.T) {
	t.Parallel()
	p := renderPartner(t, `  - id: acme
    method: PUT
    content_type: application/x-www-form-urlencoded
    url: "https://pb.acme.example/pb"
    body: "click={click_id}&ev={event}&amt={revenue|default:0}&cuid={customer_user_id}"
`)
	ev := renderEvent(t, renderEventJSON)
	r, err := p.Render(ev, "dlv_x", 1)
	require.NoError(t, err)
	require.Equal(t, http.MethodPut, r.Method)
	require.Equal(t, "click=a+b%26c%3Dd%2F%C3%A9&ev=purchase&amt=1.99&cuid=u1", string(r.Body))
	form, err := url.ParseQuery(string(r.Body))
	require.NoError(t, err)
	require.Equal(t, "a b&c=d/é", form.Get("click"))
	require.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
}

func TestPartner_Render_ConsentBlanksPersonalData(t *testing.T) {
	t.Parallel()
	const tmpl = `  - id: acme
    url: "https://pb.acme.example/c?idfa={idfa}&ip={ip}&email={email}&country={country}&cuid={customer_user_id}"
`
	ev := renderEvent(t, renderEventJSON) // consent.granted false
	p := renderPartner(t, tmpl+"    privacy: {require_consent: true}\n")
	r, err := p.Render(ev, "dlv_x", 1)
	require.NoError(t, err)
	require.Equal(t, "https://pb.acme.example/c?idfa=&ip=&email=&country=US&cuid=u1", r.URL)

	t.Run("consent given", func(t *testing.T) {
		granted := renderEvent(t, strings.Replace(renderEventJSON, `"granted": false`, `"granted": true`, 1))
		r, err := p.Render(granted, "dlv_x", 1)
		require.NoError(t, err)
		require.Equal(t, "https://pb.acme.example/c?idfa=6D92078A-8246-4BA4-AE5B-76104861E7DC&ip=203.0.113.7&email=a%40example.com&country=US&cuid=u1", r.URL)
	})
	t.Run("partner does not require it", func(t *testing.T) {
		r, err := renderPartner(t, tmpl).Render(ev, "dlv_x", 1)
		require.NoError(t, err)
		require.Contains(t, r.URL, "idfa=6D92078A")
	})
}

func TestPartner_Render_Error(t *testing.T) {
	t.Parallel()
	p := renderPartner(t, `  - id: acme
    url: "https://pb.acme.example/c?sum={revenue|cents}"
    headers: {X-Level: "{params.level}"}
`)
	ev := renderEvent(t, strings.Replace(renderEventJSON, `"level": "7"`, `"level": "7\r\nX-Evil: 1"`, 1))
	_, err := p.Render(ev, "dlv_x", 1)
	var re *config.RenderError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "headers.X-Level", re.Part)
}
