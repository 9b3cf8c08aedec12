package templates_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/templates"
)

// hostileValues are values that try to change the structure they are
// placed in.
var hostileValues = []string{
	"x&a=1", "@evil.com", "../", "..", ".", "%2e%2E", "#", "?", "\r\n", "\"", "'", "\\",
	"\xff\xfe", "%2F", "%", "%zz", "//evil.com/x", "https://evil.com", "a=b;c=d", "+ +",
	"\x00", "\u2028", "é日本", "}{", "{click_id}", "\"}, \"x\": {\"", "a\tb",
	strings.Repeat("a&b=c#", 10<<10/6),
}

const (
	hostileURLPath  = "https://pb.acme.example/c/{click_id}/end?goal={event}&a=1&b=2"
	hostileURLQuery = "https://pb.acme.example/c?click_id={click_id}&goal={event}&{click_id}=key"
	hostileURLRaw   = "https://pb.acme.example/c/{click_id|raw}/end?r={click_id|raw}&goal={event}&{click_id|raw}=key"
)

func hostile(t *testing.T, val string) *templates.Values {
	t.Helper()
	var v templates.Values
	v.Set(templates.FieldClickID, val)
	v.Set(templates.FieldRevenue, val)
	v.Set(templates.FieldEvent, "install")
	return &v
}

// checkURL asserts the parts a value must never change: scheme, host, no
// userinfo or fragment, three query pairs with these keys (nil: any keys).
func checkURL(t *testing.T, got string, keys ...string) *url.URL {
	t.Helper()
	u, err := url.Parse(got)
	require.NoError(t, err)
	require.Equal(t, "https", u.Scheme)
	require.Equal(t, "pb.acme.example", u.Host)
	require.Nil(t, u.User)
	require.Empty(t, u.Fragment)
	require.False(t, strings.Contains(u.RawQuery, ";"), "a ';' splits queries on some servers")
	pairs := strings.Split(u.RawQuery, "&")
	require.Len(t, pairs, 3, "query pairs of %q", got)
	for _, p := range pairs {
		require.Equal(t, 1, strings.Count(p, "="), "pair %q of %q", p, got)
	}
	q, err := url.ParseQuery(u.RawQuery)
	require.NoError(t, err)
	if keys != nil {
		require.ElementsMatch(t, keys, slices.Collect(mapKeys(q)))
	}
	return u
}

// pairKey returns the decoded key of the query's pair number i.
func pairKey(rawQuery string, i int) string {
	k, _, _ := strings.Cut(strings.Split(rawQuery, "&")[i], "=")
	k, _ = url.QueryUnescape(k)
	return k
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestRender_HostileURL(t *testing.T) {
	t.Parallel()
	path := templates.MustParse(hostileURLPath, templates.ContextURL)
	query := templates.MustParse(hostileURLQuery, templates.ContextURL)
	raw := templates.MustParse(hostileURLRaw, templates.ContextURL)
	for _, val := range hostileValues {
		v := hostile(t, val)

		got, err := path.Render(v)
		require.NoError(t, err)
		u := checkURL(t, got, "goal", "a", "b")
		segs := strings.Split(u.EscapedPath(), "/")
		require.Len(t, segs, 4, "path segments of %q", got)
		dec, err := url.PathUnescape(segs[2])
		require.NoError(t, err)
		require.Equal(t, val, dec)

		got, err = query.Render(v)
		require.NoError(t, err)
		u = checkURL(t, got, "click_id", "goal", val)
		require.Equal(t, val, u.Query().Get("click_id"))
		require.Equal(t, "key", u.Query().Get(val))

		// raw may keep escapes as they are, so the value need not
		// round-trip, but the structure must hold.
		got, err = raw.Render(v)
		require.NoError(t, err)
		u = checkURL(t, got)
		require.Len(t, strings.Split(u.EscapedPath(), "/"), 4, "path segments of %q", got)
		q := u.Query()
		require.Equal(t, "key", q.Get(pairKey(u.RawQuery, 2)))
		require.Equal(t, "install", q.Get("goal"))
		require.Contains(t, q, "r")
	}
}

func TestRender_HostileJSON(t *testing.T) {
	t.Parallel()
	tmpl := templates.MustParse(`{"click":"{click_id}","k {click_id}":1,"amount":{revenue|json},"c":{click_id|json},"goal":"{event}"}`, templates.ContextJSON)
	for _, val := range hostileValues {
		got, err := tmpl.Render(hostile(t, val))
		require.NoError(t, err)
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(got), &doc), got)

		// What encoding/json makes of val: the same string when it is valid
		// UTF-8, each invalid byte replaced by U+FFFD otherwise.
		enc, err := json.Marshal(val)
		require.NoError(t, err)
		var want string
		require.NoError(t, json.Unmarshal(enc, &want))

		require.ElementsMatch(t, []string{"click", "k " + want, "amount", "c", "goal"}, slices.Collect(mapKeys(doc)))
		require.Equal(t, want, doc["click"])
		require.Equal(t, want, doc["c"])
		require.Equal(t, want, doc["amount"])
		require.Equal(t, "install", doc["goal"])
	}
}

func TestRender_HostileForm(t *testing.T) {
	t.Parallel()
	tmpl := templates.MustParse("click={click_id}&goal={event}&{click_id}=key&r={click_id|raw}", templates.ContextForm)
	for _, val := range hostileValues {
		got, err := tmpl.Render(hostile(t, val))
		require.NoError(t, err)
		q, err := url.ParseQuery(got)
		require.NoError(t, err, got)
		require.ElementsMatch(t, []string{"click", "goal", val, "r"}, slices.Collect(mapKeys(q)))
		require.Equal(t, val, q.Get("click"))
		require.Equal(t, "key", q.Get(val))
	}
}

func TestRender_HostileHeader(t *testing.T) {
	t.Parallel()
	tmpl := templates.MustParse("Bearer {click_id}", templates.ContextHeader)
	for _, val := range hostileValues {
		got, err := tmpl.Render(hostile(t, val))
		if strings.ContainsFunc(val, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			var rerr *templates.RenderError
			require.ErrorAs(t, err, &rerr, "%q", val)
			require.Empty(t, got)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, "Bearer "+val, got)
	}
}
