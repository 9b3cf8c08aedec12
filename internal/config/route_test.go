package config_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/wire"
)

// mustConfig parses a postback.yaml for a test.
func mustConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	return cfg
}

const routesYAML = `
api:
  keys: [k-0123456789abcdef]
partners:
  - id: acme_ads
    events: [install, purchase]
    url: "https://acme.example/c?c={click_id}"
  - id: all_purchases
    events: [purchase]
    match: all
    when: 'revenue > 0 && country in ["US", "CA"]'
    url: "https://all.example/c?r={revenue}"
  - id: disabled
    enabled: false
    match: all
    url: "https://off.example/"
  - id: by_param
    match: all
    when: 'params.level == "7" && event != "install"'
    url: "https://param.example/"
  - id: consent_ids
    match: all
    events: [install]
    when: 'idfa != ""'
    privacy: {require_consent: true}
    url: "https://ids.example/{idfa}"
`

func TestRoutes_EventsMatchAndWhen(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, routesYAML)
	type route struct{ partner, skip string }
	routes := func(ev *event.Event) []route {
		var out []route
		for _, r := range config.Routes(cfg.Partners, ev) {
			require.Equal(t, wire.DeliveryID(ev.ID, r.Partner.ID), r.DeliveryID)
			out = append(out, route{r.Partner.ID, r.Skip})
		}
		return out
	}
	purchase := &event.Event{ID: "e1", Name: "purchase", Attribution: event.Attribution{Partner: "acme_ads"},
		Device: event.Device{Country: "US"}, Revenue: event.Revenue{Amount: "0.10", Currency: "USD"},
		Params: map[string]string{"level": "7"}}
	require.Equal(t, []route{{"acme_ads", ""}, {"all_purchases", ""}, {"by_param", ""}}, routes(purchase))

	free := *purchase
	free.Revenue = event.Revenue{}
	free.Attribution.Partner = "someone_else"
	free.Params = nil
	require.Equal(t, []route{
		{"all_purchases", "when: condition is false"},
		{"by_param", "when: condition is false"},
	}, routes(&free), "a false `when` is a skipped delivery, recorded with its reason")

	elsewhere := *purchase
	elsewhere.Device.Country = "FR"
	require.Equal(t, []route{{"acme_ads", ""}, {"all_purchases", "when: condition is false"}, {"by_param", ""}}, routes(&elsewhere))

	signUp := &event.Event{ID: "e2", Name: "sign_up", Attribution: event.Attribution{Partner: "acme_ads"}}
	require.Equal(t, []route{{"by_param", "when: condition is false"}}, routes(signUp), "acme_ads does not list sign_up")
}

func TestRoutes_WhenSeesNoIdentifiersWithoutConsent(t *testing.T) {
	t.Parallel()
	cfg := mustConfig(t, routesYAML)
	ev := &event.Event{ID: "e3", Name: "install", Device: event.Device{IDFA: "6D92078A-8246-4BA4-AE5B-76104861E7DC"}}
	var got []config.Route
	for _, r := range config.Routes(cfg.Partners, ev) {
		if r.Partner.ID == "consent_ids" {
			got = append(got, r)
		}
	}
	require.Len(t, got, 1)
	require.Equal(t, "when: condition is false", got[0].Skip, "without consent the idfa is empty, also for `when`")

	yes := true
	ev.Consent.Granted = &yes
	for _, r := range config.Routes(cfg.Partners, ev) {
		if r.Partner.ID == "consent_ids" {
			require.Empty(t, r.Skip)
		}
	}
}

func TestDeliveryID_StableAndDistinct(t *testing.T) {
	t.Parallel()
	a := wire.DeliveryID("evt-1", "acme_ads")
	require.Regexp(t, `^dlv_[0-9a-f]{32}$`, a)
	require.Equal(t, a, wire.DeliveryID("evt-1", "acme_ads"))
	require.NotEqual(t, a, wire.DeliveryID("evt-1", "acme_ad"))
	require.NotEqual(t, wire.DeliveryID("a", "bc"), wire.DeliveryID("ab", "c"), "the separator keeps ids apart")
}

func TestCompileCondition_ErrorPosition(t *testing.T) {
	t.Parallel()
	cases := []struct {
		src          string
		line, column int
	}{
		{`revenue > )`, 1, 11},
		{`country == "US" &&` + "\n" + `  reveneu > 0`, 2, 3},
		{`country`, 1, 1}, // not a boolean
	}
	for _, tc := range cases {
		_, err := config.CompileCondition(tc.src)
		var ce *config.ConditionError
		require.True(t, errors.As(err, &ce), "%q: %v", tc.src, err)
		require.Equal(t, tc.line, ce.Line, "%q: %v", tc.src, ce)
		require.Equal(t, tc.column, ce.Column, "%q: %v", tc.src, ce)
		require.NotEmpty(t, ce.Msg)
	}
	c, err := config.CompileCondition(`revenue >= 1.5 && lower(os) == "ios"`)
	require.NoError(t, err)
	require.Equal(t, `revenue >= 1.5 && lower(os) == "ios"`, c.String())
}

func TestCompileCondition_BadWhenIsALoadError(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("postback.yaml", []byte(`
api:
  keys: [k-0123456789abcdef]
partners:
  - id: acme_ads
    when: 'revenue > 0 && contry == "US"'
    url: "https://acme.example/"
`), func(string) (string, bool) { return "", false })
	require.Error(t, err)
	require.Contains(t, err.Error(), "postback.yaml:6:")
	require.Contains(t, err.Error(), "contry")
}
