package templates_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/templates"
)

func TestParse_Errors(t *testing.T) {
	t.Parallel()
	const (
		url  = templates.ContextURL
		js   = templates.ContextJSON
		form = templates.ContextForm
		hdr  = templates.ContextHeader
		text = templates.ContextText
	)
	tests := []struct {
		name   string
		src    string
		ctx    templates.Context
		msg    string
		offset int
	}{
		{"typo", "https://h/c?c={clik_id}", url, "unknown macro {clik_id} (did you mean {click_id}?)", 14},
		{"case", "{Click_ID}", text, "unknown macro {Click_ID} (did you mean {click_id}?)", 0},
		{"far off", "{nothing_like_it}", text, "unknown macro {nothing_like_it}", 0},
		{"params typo", "{param.level}", text, "unknown macro {param.level} (did you mean {params.level}?)", 0},
		{"params no key", "a{params.}", text, "macro {params.} needs a key, like {params.level}", 1},
		{"bare params", "{params}", text, "unknown macro {params} (free params are written {params.KEY})", 0},
		{"unknown filter", "x={event|lowr}", text, `unknown filter "lowr" in {event|lowr} (did you mean "lower"?)`, 9},
		{"unknown filter far", "{event|frobnicate}", text, `unknown filter "frobnicate" in {event|frobnicate}`, 7},
		{"empty filter", "{event|}", text, "empty filter in {event|}", 7},
		{"map needs arg", "{event|map}", text, `filter "map" needs an argument like map:a=1,b=2`, 7},
		{"map empty arg", "{event|map:}", text, `filter "map" needs an argument like map:a=1,b=2`, 7},
		{"default needs arg", "{event|default}", text, `filter "default" needs an argument like default:0`, 7},
		{"no arg", "{event|lower:x}", text, `filter "lower" takes no argument, in {event|lower:x}`, 7},
		{"map entry", "{event|map:a=1,b}", text, `filter "map" entry "b" needs a value, like map:a=1,b=2`, 15},
		{"map dup", "{event|map:a=1,a=2}", text, `filter "map" maps "a" twice`, 15},
		{"map empty key", "{event|map:=1}", text, `filter "map" entry "=1" has an empty key`, 11},
		{"map two stars", "{event|map:*=1,*=2}", text, `filter "map" has two "*" fallbacks`, 15},
		{"json not last", "{revenue|json|upper}", text, `filter "json" must be the last one in {revenue|json|upper}`, 9},
		{"raw not last", "{event|raw|upper}", text, `filter "raw" must be the last one in {event|raw|upper}`, 7},
		{"unclosed at end", "https://h/c?c={click_id", url, "unclosed macro {click_id", 14},
		{"unclosed in filter", "{event|map:a=1", text, "unclosed macro {event|map:a=1", 0},
		{"unclosed long", "{event|map:a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11", text, "unclosed macro {event|map:a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j…", 0},
		{"bad char", "https://h/c?c={click_id&x=1", url, `unclosed macro {click_id ("&" where "|" or "}" should be)`, 14},
		{"space", "{click id}", text, `unclosed macro {click (" " where "|" or "}" should be)`, 0},
		{"host", "https://{sub1}.example.com/c", url, "macro {sub1} not allowed in the URL host", 8},
		{"host suffix", "https://pb.{sub1}/c", url, "macro {sub1} not allowed in the URL host", 11},
		{"port", "https://pb.example:{sub1}/c", url, "macro {sub1} not allowed in the URL port", 19},
		{"userinfo", "https://{sub1}@pb.example/c", url, "macro {sub1} not allowed in the URL userinfo", 8},
		{"password", "https://u:{sub1}@pb.example/c", url, "macro {sub1} not allowed in the URL userinfo", 10},
		{"scheme", "{sub1}://pb.example/c", url, "macro {sub1} not allowed in the URL scheme", 0},
		{"whole url", "{sub1}", url, "macro {sub1} not allowed in the URL scheme", 0},
		{"fragment", "https://pb.example/c#{sub1}", url, "macro {sub1} not allowed in the URL fragment (browsers keep it, servers never see it)", 21},
		{"relative", "/c?x={sub1}", url, "a URL must start with a scheme and host, like https://host/", 0},
		{"no slashes", "mailto:x", url, "a URL must start with a scheme and host, like https://host/", 7},
		{"empty host", "https:///c", url, "a URL needs a host, like https://host/", 8},
		{"empty", "", url, "a URL must start with a scheme and host, like https://host/", 0},
		{"url space", "https://h/c?a=b c", url, "a URL cannot contain a space; write it as %20", 15},
		{"url newline", "https://h/c\n", url, "a URL cannot contain a control character", 11},
		{"bad port", "https://h:http/c?a={sub1}", url, `invalid URL: invalid port ":http" after host`, 0},
		{"json outside string", `{"amount":{revenue}}`, js, "macro {revenue} outside a JSON string needs the json filter, like {revenue|json}", 10},
		{"json in string", `{"amount":"{revenue|json}"}`, js, "macro {revenue|json} renders a whole JSON value; remove the quotes around it", 11},
		{"json raw", `{"a":"{sub1|raw}"}`, js, `filter "raw" is not available in a JSON body, in {sub1|raw}`, 6},
		{"invalid json", `{"a":"{sub1}",}`, js, "invalid JSON body: invalid character '}' looking for beginning of object key string", 14},
		{"header newline", "Bearer x\r\n{sub1}", hdr, "a header value cannot contain a line break or NUL", 8},
		{"form ok but bad filter", "a={sub1|nope}", form, `unknown filter "nope" in {sub1|nope}`, 8},
		{"raw in path", "https://h/c/{click_id|raw}?r={click_id|raw}", url, `filter "raw" is not available in a URL path, in {click_id|raw} (a %2E or %2F it kept could change the path)`, 12},
		{"raw in first segment", "https://h/{sub1|lower|raw}", url, `filter "raw" is not available in a URL path, in {sub1|lower|raw} (a %2E or %2F it kept could change the path)`, 10},
		{"macro in default", "{revenue|default:{click_id}}", text, "a macro cannot be used inside a filter argument; filter arguments are literal", 17},
		{"macro in map", "https://h/?s={sub1|map:a={click_id},*=0}", url, "a macro cannot be used inside a filter argument; filter arguments are literal", 25},
		{"macro in later filter", `{"a":"{sub1|lower|default:x{event}}"}`, js, "a macro cannot be used inside a filter argument; filter arguments are literal", 27},
		{"brace in argument", "{sub1|default:{}", text, `a filter argument cannot contain "{"; filter arguments are literal and end at "|" or "}"`, 14},
		{"double brace in argument", "{sub1|default:a{{}", hdr, `a filter argument cannot contain "{"; filter arguments are literal and end at "|" or "}"`, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := templates.Parse(tt.src, tt.ctx)
			require.Error(t, err)
			var perr *templates.Error
			require.True(t, errors.As(err, &perr), "error %T is not a *templates.Error", err)
			require.Equal(t, tt.msg, perr.Msg)
			require.Equal(t, tt.msg, err.Error())
			require.Equal(t, tt.offset, perr.Offset)
		})
	}
}

func TestParse_Literals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want string
	}{
		{"", ""},
		{"plain", "plain"},
		{"{{click_id}", "{click_id}"},
		{"{{{click_id}", "{abc"},
		{"a}b{1}{ x}{", "a}b{1}{ x}{"},
		{`{"c":"{click_id}","n":{"m":[{}]}}`, `{"c":"abc","n":{"m":[{}]}}`},
		{"{{", "{"},
		{"}}", "}}"},
	}
	var v templates.Values
	v.Set(templates.FieldClickID, "abc")
	for _, tt := range tests {
		tmpl, err := templates.Parse(tt.src, templates.ContextText)
		require.NoError(t, err, tt.src)
		got, err := tmpl.Render(&v)
		require.NoError(t, err)
		require.Equal(t, tt.want, got, tt.src)
		require.Equal(t, tt.src, tmpl.Source())
	}
}

func TestTemplate_FieldsParams(t *testing.T) {
	t.Parallel()
	tmpl := templates.MustParse("https://h/{event}?c={click_id}&e={event|upper}&l={params.level}&x={params.a.b-c}&l2={params.level}", templates.ContextURL)
	require.Equal(t, []templates.Field{templates.FieldEvent, templates.FieldClickID}, tmpl.Fields())
	require.Equal(t, []string{"level", "a.b-c"}, tmpl.Params())
	require.Equal(t, templates.ContextURL, tmpl.Context())

	// The slices are copies: changing them leaves the template alone.
	tmpl.Fields()[0] = templates.FieldIP
	require.Equal(t, templates.FieldEvent, tmpl.Fields()[0])
}

func TestMustParse(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, `templates: url template "{x}": unknown macro {x}`, func() {
		templates.MustParse("{x}", templates.ContextURL)
	})
}

func TestParse_InvalidContext(t *testing.T) {
	t.Parallel()
	_, err := templates.Parse("x", templates.Context(0))
	var perr *templates.Error
	require.ErrorAs(t, err, &perr)
}

func TestFieldByName(t *testing.T) {
	t.Parallel()
	for _, f := range templates.Fields() {
		got, ok := templates.FieldByName(f.String())
		require.True(t, ok, f.String())
		require.Equal(t, f, got)
	}
	require.Len(t, templates.Fields(), 37)
	f, ok := templates.FieldByName("click_id")
	require.True(t, ok)
	require.Equal(t, templates.FieldClickID, f)
	_, ok = templates.FieldByName("params.level")
	require.False(t, ok)
	require.Equal(t, "Field(0)", templates.Field(0).String())
	require.True(t, templates.FieldIDFA.Personal())
	require.False(t, templates.FieldEvent.Personal())
}

// TestParse_everyWrongMacro: one Parse names every wrong macro of a
// template, in order, each at its offset; an unclosed one ends the list
// (what follows it cannot be read).
func TestParse_everyWrongMacro(t *testing.T) {
	src := "https://x.example/?a={clik_id}&b={click_id}&c={evnt|lower}&d={event|nope}&e={event"
	_, err := templates.Parse(src, templates.ContextURL)
	require.Error(t, err)
	tes := templates.Errors(err)
	require.Len(t, tes, 4, "%v", err)
	for i, want := range []struct {
		macro string
		msg   string
	}{
		{"{clik_id}", "unknown macro {clik_id}"},
		{"{evnt|lower}", "unknown macro {evnt}"},
		{"nope", `unknown filter "nope"`},
		{"{event", "unclosed macro {event"},
	} {
		require.Contains(t, tes[i].Msg, want.msg)
		require.Equal(t, strings.LastIndex(src, want.macro), tes[i].Offset, tes[i].Msg)
	}
	var first *templates.Error
	require.ErrorAs(t, err, &first)
	require.Equal(t, tes[0], first)

	// One problem is the *Error itself.
	_, err = templates.Parse("{evnt}", templates.ContextText)
	_, ok := err.(*templates.Error)
	require.True(t, ok, "%T", err)
	require.Len(t, templates.Errors(err), 1)
	require.Nil(t, templates.Errors(errors.New("other")))
}

// TestParse_filterArgumentMacro: a macro in a filter argument is one error
// at its '{', and Parse goes on past it to the next wrong macro; the '}'
// left over is not an error of its own.
func TestParse_filterArgumentMacro(t *testing.T) {
	t.Parallel()
	src := "https://h/?a={revenue|default:{click_id}}&b={clik_id}&c={sub1|default:0}"
	_, err := templates.Parse(src, templates.ContextURL)
	tes := templates.Errors(err)
	require.Len(t, tes, 2, "%v", err)
	require.Equal(t, "a macro cannot be used inside a filter argument; filter arguments are literal", tes[0].Msg)
	require.Equal(t, strings.Index(src, "{click_id}"), tes[0].Offset)
	require.Equal(t, "unknown macro {clik_id} (did you mean {click_id}?)", tes[1].Msg)

	// A '{' that opens no macro is literal outside an argument, as before.
	tmpl, err := templates.Parse("{sub1|default:a}{ }{1}", templates.ContextText)
	require.NoError(t, err)
	got, err := tmpl.Render(nil)
	require.NoError(t, err)
	require.Equal(t, "a{ }{1}", got)
}
