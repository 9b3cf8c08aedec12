package templates_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
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
	hostileURLRaw   = "https://pb.acme.example/c/{click_id}/end?r={click_id|raw}&goal={event}&{click_id|raw}=key"
)

// dotValues are the hostile values that make a dot segment in a path,
// ".." or "." once percent-decoded (as often as it still changes): Render
// refuses them there.
var dotValues = map[string]bool{"../": true, "..": true, ".": true, "%2e%2E": true}

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

		got, err := query.Render(v)
		require.NoError(t, err)
		u := checkURL(t, got, "click_id", "goal", val)
		require.Equal(t, val, u.Query().Get("click_id"))
		require.Equal(t, "key", u.Query().Get(val))

		got, err = path.Render(v)
		if dotValues[val] {
			var rerr *templates.RenderError
			require.ErrorAs(t, err, &rerr, "%q", val)
			require.Contains(t, rerr.Msg, "dot segment")
			require.Empty(t, got)
			_, err = raw.Render(v)
			require.ErrorAs(t, err, &rerr, "%q", val)
			continue
		}
		require.NoError(t, err, "%q", val)
		u = checkURL(t, got, "goal", "a", "b")
		segs := strings.Split(u.EscapedPath(), "/")
		require.Len(t, segs, 4, "path segments of %q", got)
		dec, err := url.PathUnescape(segs[2])
		require.NoError(t, err)
		require.Equal(t, val, dec)

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

// TestRender_DotSegments: no value, alone or with the literal text and the
// other macros of its segment, makes a path segment that reads as "." or
// ".." once percent-decoded (as many times as it still decodes, and split
// at a decoded '/' or '\' or a ';'); such a render is refused. Dot
// segments written in the template itself are kept.
func TestRender_DotSegments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src     string
		sub1    string
		sub2    string
		want    string // "" when refused
		macro   string // the macro the refusal names
		segment string // the segment it names
		decodes bool   // the segment reads as a dot segment only once decoded
	}{
		{src: "https://h/a/{sub1}/b", sub1: "..", macro: "{sub1}", segment: ".."},
		{src: "https://h/a/{sub1}/b", sub1: ".", macro: "{sub1}", segment: "."},
		{src: "https://h/a/{sub1}", sub1: "..", macro: "{sub1}", segment: ".."},
		{src: "https://h/{sub1}?q=1", sub1: "..", macro: "{sub1}", segment: ".."},
		{src: "https://h/a/{sub1}/b", sub1: "%2e", macro: "{sub1}", segment: "%252e", decodes: true},
		{src: "https://h/a/{sub1}/b", sub1: "%2E%2e", macro: "{sub1}", segment: "%252E%252e", decodes: true},
		{src: "https://h/a/{sub1}/b", sub1: "%252E.", macro: "{sub1}", segment: "%25252E.", decodes: true},
		{src: "https://h/a/{sub1}/b", sub1: "../x", macro: "{sub1}", segment: "..%2Fx", decodes: true},
		{src: "https://h/a/{sub1}/b", sub1: `x\.`, macro: "{sub1}", segment: "x%5C.", decodes: true},
		{src: "https://h/a/{sub1}/b", sub1: "..;v=1", macro: "{sub1}", segment: "..%3Bv=1", decodes: true},
		{src: "https://h/a/{sub1}{sub2}/b", sub1: ".", sub2: ".", macro: "{sub1}", segment: ".."},
		{src: "https://h/a/{sub1}{sub2}/b", sub2: "..", macro: "{sub1}", segment: ".."},
		{src: "https://h/a/.{sub1}/b", sub1: ".", macro: "{sub1}", segment: ".."},
		{src: "https://h/a/.{sub1}/b", macro: "{sub1}", segment: "."},
		{src: "https://h/a/{sub1|default:.}/b", macro: "{sub1|default:.}", segment: "."},
		{src: "https://h/a/%2E{sub1}/b", sub1: ".", macro: "{sub1}", segment: "%2E.", decodes: true},
		{src: "https://h/a/%25{sub1}/b", sub1: "2e", macro: "{sub1}", segment: "%252e", decodes: true},
		{src: "https://h/a/{sub1}.{sub2}/b", macro: "{sub1}", segment: "."},
		{src: "https://h/a/{event}/{sub1}/b", sub1: "..", macro: "{sub1}", segment: ".."},

		// Not dot segments.
		{src: "https://h/a/{sub1}/b", sub1: "...", want: "https://h/a/.../b"},
		{src: "https://h/a/{sub1}/b", sub1: "a..", want: "https://h/a/a../b"},
		{src: "https://h/a/{sub1}/b", sub1: "1.99", want: "https://h/a/1.99/b"},
		{src: "https://h/a/{sub1}/b", sub1: "%2", want: "https://h/a/%252/b"},
		{src: "https://h/a/{sub1}/b", sub1: "%2e%2e%2e", want: "https://h/a/%252e%252e%252e/b"},
		{src: "https://h/a/{sub1}/b", want: "https://h/a//b"},
		{src: "https://h/a/{sub1}b/c", sub1: "..", want: "https://h/a/..b/c"},
		{src: "https://h/a/{sub1}?q={sub2}", sub1: "x", sub2: "..", want: "https://h/a/x?q=.."},
		// The template's own dot segments are its author's.
		{src: "https://h/a/../{sub1}/./%2E", sub1: "x", want: "https://h/a/../x/./%2E"},
	}
	for _, tt := range tests {
		var v templates.Values
		v.Set(templates.FieldEvent, "install")
		v.Set(templates.FieldSub1, tt.sub1)
		v.Set(templates.FieldSub2, tt.sub2)
		tmpl := templates.MustParse(tt.src, templates.ContextURL)
		got, err := tmpl.Render(&v)
		if tt.want != "" {
			require.NoError(t, err, "%s %q %q", tt.src, tt.sub1, tt.sub2)
			require.Equal(t, tt.want, got)
			continue
		}
		var rerr *templates.RenderError
		require.ErrorAs(t, err, &rerr, "%s %q %q rendered %q", tt.src, tt.sub1, tt.sub2, got)
		require.Empty(t, got)
		require.Equal(t, tt.macro, rerr.Macro)
		require.Equal(t, strings.Index(tt.src, tt.macro), rerr.Offset)
		want := "path segment " + strconv.Quote(tt.segment) + " is a dot segment"
		if tt.decodes {
			want = "path segment " + strconv.Quote(tt.segment) + " holds the dot segment "
		}
		require.Contains(t, rerr.Msg, want)
		_, err = tmpl.Append(nil, &v)
		require.ErrorAs(t, err, &rerr)
	}

	// The message in full, as the dead letter shows it.
	var v templates.Values
	v.Set(templates.FieldClickID, "%2e%2E")
	_, err := templates.MustParse("https://h/c/{click_id}/x", templates.ContextURL).Render(&v)
	require.EqualError(t, err, `{click_id}: path segment "%252e%252E" holds the dot segment ".." once percent-decoded; the partner would resolve it to another path`)
	v.Set(templates.FieldClickID, "..")
	_, err = templates.MustParse("https://h/c/{click_id}/x", templates.ContextURL).Render(&v)
	require.EqualError(t, err, `{click_id}: path segment ".." is a dot segment; the partner would resolve it to another path`)
}
