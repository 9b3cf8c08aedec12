package templates_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/templates"
)

// setup returns Values filled like a typical purchase event.
func setup(t testing.TB) *templates.Values {
	t.Helper()
	var v templates.Values
	v.Set(templates.FieldEventID, "evt-123")
	v.Set(templates.FieldEvent, "purchase")
	v.SetTime(time.Date(2026, 11, 25, 18, 31, 21, 250e6, time.FixedZone("CET", 3600)))
	v.Set(templates.FieldClickID, "abc")
	v.Set(templates.FieldRevenue, "1.99")
	v.Set(templates.FieldCurrency, "USD")
	v.Set(templates.FieldEmail, "  A@Example.com ")
	v.Set(templates.FieldCountry, "us")
	v.Set(templates.FieldAttempt, "3")
	v.SetParam("level", "7")
	return &v
}

func render(t *testing.T, src string, ctx templates.Context, v *templates.Values) string {
	t.Helper()
	tmpl, err := templates.Parse(src, ctx)
	require.NoError(t, err, src)
	got, err := tmpl.Render(v)
	require.NoError(t, err, src)
	buf, err := tmpl.Append([]byte("prefix:"), v)
	require.NoError(t, err, src)
	require.Equal(t, "prefix:"+got, string(buf), "Append and Render differ")
	return got
}

func TestRender_Filters(t *testing.T) {
	t.Parallel()
	v := setup(t)
	tests := []struct{ src, want string }{
		{"{click_id}", "abc"},
		{"{sub1}", ""},
		{"{params.level}", "7"},
		{"{params.missing}", ""},
		{"{params.missing|default:none}", "none"},
		{"{sub1|default:0}", "0"},
		{"{click_id|default:0}", "abc"},
		{"{sub1|default:a b:c}", "a b:c"},
		{"{country|upper}", "US"},
		{"{currency|lower}", "usd"},
		{"{email|trim}", "A@Example.com"},
		{"{email|trim|lower}", "a@example.com"},
		{"{email|sha256}", "08168cd80dfd534ab0f10af10f1303fe00af2d43ab5c1432360d137f8197e17a"},
		{"{email|sha1}", "11a586cd1f7d573b856f94a619ae806a9a63f0a4"},
		{"{email|md5}", "b418773a2c51fb9777a1648346fa7394"},
		{"{email|trim|lower|sha256}", "08168cd80dfd534ab0f10af10f1303fe00af2d43ab5c1432360d137f8197e17a"},
		{"{sub1|sha256}", ""},
		{"{timestamp}", "2026-11-25T17:31:21Z"},
		{"{timestamp|unix}", "1795627881"},
		{"{timestamp|unixms}", "1795627881250"},
		{"{timestamp|rfc3339}", "2026-11-25T17:31:21Z"},
		{"{revenue|cents}", "199"},
		{"{event|map:install=1,purchase=2}", "2"},
		{"{event|map:install=1}", "purchase"},
		{"{event|map:install=1,*=0}", "0"},
		{"{sub1|map:install=1,*=0}", ""},
		{"{sub1|map:install=1,*=0|default:x}", "x"},
		{"{event|map:purchase=}", ""},
		{"{event|upper|map:PURCHASE=p|upper}", "P"},
		{"{revenue|json}", "1.99"},
		{"{attempt|json}", "3"},
		{"{click_id|json}", `"abc"`},
		{"{sub1|json}", "null"},
		{"{params.level|json}", `"7"`},
		{"{revenue|cents|json}", "199"},
		{"{click_id|raw}", "abc"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, render(t, tt.src, templates.ContextText, v), tt.src)
	}
}

func TestRender_Unicode(t *testing.T) {
	t.Parallel()
	var v templates.Values
	v.Set(templates.FieldCampaign, "Ünïcode ÉTÉ \xff")
	require.Equal(t, "ünïcode été \xff", render(t, "{campaign|lower}", templates.ContextText, &v))
	require.Equal(t, "ÜNÏCODE ÉTÉ \xff", render(t, "{campaign|upper}", templates.ContextText, &v))
}

func TestRender_Cents(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"1.99", "199"}, {"2", "200"}, {"0.5", "50"}, {".5", "50"}, {"7.", "700"},
		{"0", "0"}, {"0.00", "0"}, {"0.001", "0"}, {"0.005", "1"}, {"1.994", "199"},
		{"1.995", "200"}, {"9.995", "1000"}, {"99.999", "10000"}, {"-1.5", "-150"},
		{"-1.995", "-200"}, {"-0.001", "0"}, {"+3.1", "310"}, {"007.07", "707"},
		{"123456789012345678901234567890.12", "12345678901234567890123456789012"},
	}
	for _, tt := range tests {
		var v templates.Values
		v.Set(templates.FieldRevenue, tt.in)
		require.Equal(t, tt.want, render(t, "{revenue|cents}", templates.ContextText, &v), tt.in)
	}
}

func TestRender_JSONNumber(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"1.99", "1.99"}, {"+1.50", "1.50"}, {"007", "7"}, {".5", "0.5"}, {"5.", "5"},
		{"-0.5", "-0.5"}, {"1e3", `"1e3"`}, {"abc", `"abc"`}, {"1,5", `"1,5"`}, {"", "null"},
	}
	for _, tt := range tests {
		var v templates.Values
		v.Set(templates.FieldRevenue, tt.in)
		require.Equal(t, tt.want, render(t, "{revenue|json}", templates.ContextText, &v), tt.in)
	}
}

func TestRender_TimeFilters(t *testing.T) {
	t.Parallel()
	var v templates.Values
	v.Set(templates.FieldTimestamp, "2026-11-25T19:31:21.5+02:00")
	v.SetParam("at", "2026-01-02T03:04:05Z")
	require.Equal(t, "1795627881", render(t, "{timestamp|unix}", templates.ContextText, &v))
	require.Equal(t, "1795627881500", render(t, "{timestamp|unixms}", templates.ContextText, &v))
	require.Equal(t, "2026-11-25T17:31:21Z", render(t, "{timestamp|rfc3339}", templates.ContextText, &v))
	require.Equal(t, "1767323045", render(t, "{params.at|unix}", templates.ContextText, &v))
	require.Equal(t, "", render(t, "{params.none|unix}", templates.ContextText, &v))
	require.Equal(t, "0", render(t, "{params.none|unix|default:0}", templates.ContextText, &v))

	// No time at all: absent, so default applies.
	require.Equal(t, "-", render(t, "{timestamp|unix|default:-}", templates.ContextText, nil))
}

func TestRender_Errors(t *testing.T) {
	t.Parallel()
	var v templates.Values
	v.Set(templates.FieldRevenue, "1,99")
	v.Set(templates.FieldSub1, "yesterday")
	v.Set(templates.FieldUserAgent, "x\r\nX-Evil: 1")
	v.Set(templates.FieldSub2, "a\x00b")
	tests := []struct {
		src  string
		ctx  templates.Context
		want string
		off  int
	}{
		{"c={revenue|cents}", templates.ContextText, `{revenue|cents}: value "1,99" is not a decimal number`, 2},
		{"{sub1|unix}", templates.ContextText, `{sub1|unix}: value "yesterday" is not an RFC 3339 time`, 0},
		{"ua {user_agent}", templates.ContextHeader, "{user_agent}: value contains a line break (CR or LF), which a header cannot carry", 3},
		{"{sub2}", templates.ContextHeader, "{sub2}: value contains a control character, which a header cannot carry", 0},
		{"{user_agent|raw}", templates.ContextHeader, "{user_agent|raw}: value contains a line break (CR or LF), which a header cannot carry", 0},
	}
	for _, tt := range tests {
		tmpl := templates.MustParse(tt.src, tt.ctx)
		got, err := tmpl.Render(&v)
		require.Empty(t, got)
		var rerr *templates.RenderError
		require.ErrorAs(t, err, &rerr, tt.src)
		require.Equal(t, tt.want, err.Error())
		require.Equal(t, tt.off, rerr.Offset)
		_, err = tmpl.Append(nil, &v)
		require.ErrorAs(t, err, &rerr, tt.src)
	}
}

func TestRender_URL(t *testing.T) {
	t.Parallel()
	var v templates.Values
	v.Set(templates.FieldClickID, "a b/c?d&e=f#g%2F+é")
	v.Set(templates.FieldSub1, "..")
	v.Set(templates.FieldSub2, "%2e.")
	v.Set(templates.FieldSub3, "a%2Fb%zz&c=d e;f+g")
	tests := []struct{ src, want string }{
		{"https://h/p/{click_id}", "https://h/p/a%20b%2Fc%3Fd&e=f%23g%252F+%C3%A9"},
		{"https://h/p?c={click_id}", "https://h/p?c=a+b%2Fc%3Fd%26e%3Df%23g%252F%2B%C3%A9"},
		{"https://h/p?{click_id}=1", "https://h/p?a+b%2Fc%3Fd%26e%3Df%23g%252F%2B%C3%A9=1"},
		{"https://h/p/{click_id}?c={click_id}#frag", "https://h/p/a%20b%2Fc%3Fd&e=f%23g%252F+%C3%A9?c=a+b%2Fc%3Fd%26e%3Df%23g%252F%2B%C3%A9#frag"},
		{"https://h:8080/p?c={sub5}", "https://h:8080/p?c="},
		{"https://h?c={sub3}", "https://h?c=a%252Fb%25zz%26c%3Dd+e%3Bf%2Bg"},
		{"https://h/a{sub1}/x", "https://h/a../x"},
		{"https://h/p?c={sub1}&d={sub2}", "https://h/p?c=..&d=%252e."},
		// raw keeps %XX and a few safe sub-delims, never the structural bytes.
		{"https://h?c={sub3|raw}", "https://h?c=a%2Fb%25zz%26c%3Dd%20e%3Bf+g"},
		{"https://h/?e={email|sha256}&r={revenue|cents}", "https://h/?e=&r="},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, render(t, tt.src, templates.ContextURL, &v), tt.src)
	}
}

func TestRender_JSON(t *testing.T) {
	t.Parallel()
	var v templates.Values
	v.Set(templates.FieldClickID, "a\"b\\c\n\t\x01\u2028é\xff")
	v.Set(templates.FieldRevenue, "1.50")
	got := render(t, `{"click":"{click_id}","pre {click_id} post":1,"amount":{revenue|json},"c":{click_id|json},"n":{sub1|json},"s":"{{x}"}`, templates.ContextJSON, &v)
	want := `{"click":"a\"b\\c\n\t\u0001\u2028é\ufffd","pre a\"b\\c\n\t\u0001\u2028é\ufffd post":1,"amount":1.50,"c":"a\"b\\c\n\t\u0001\u2028é\ufffd","n":null,"s":"{x}"}`
	require.Equal(t, want, got)

	// A brace-heavy template with an escaped quote stays in string mode.
	require.Equal(t, `{"a":"\"{x}\" 1"}`, render(t, `{"a":"\"{{x}\" {attempt|default:1}"}`, templates.ContextJSON, &v))
}

func TestRender_Form(t *testing.T) {
	t.Parallel()
	var v templates.Values
	v.Set(templates.FieldClickID, "a b&c=d")
	v.Set(templates.FieldEvent, "%41&")
	require.Equal(t, "click=a+b%26c%3Dd&e=%2541%26&r=%41%26", render(t, "click={click_id}&e={event}&r={event|raw}", templates.ContextForm, &v))
}

func TestRender_Header(t *testing.T) {
	t.Parallel()
	var v templates.Values
	v.Set(templates.FieldClickID, "a b\t\"c\"é")
	require.Equal(t, "Bearer a b\t\"c\"é", render(t, "Bearer {click_id}", templates.ContextHeader, &v))
}

func TestRender_Text(t *testing.T) {
	t.Parallel()
	var v templates.Values
	v.Set(templates.FieldClickID, "a&b\r\n\"")
	require.Equal(t, "x a&b\r\n\"", render(t, "x {click_id}", templates.ContextText, &v))
}

func TestRender_NilValues(t *testing.T) {
	t.Parallel()
	require.Equal(t, "https://h/?c=&d=0", render(t, "https://h/?c={click_id}&d={sub1|default:0}", templates.ContextURL, nil))
}

func TestTemplate_Allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	v := setup(t)
	tmpl := templates.MustParse("https://h/{event}?c={click_id}&e={email|sha256}&r={revenue|cents}&t={timestamp|unixms}&g={event|map:purchase=2}&l={params.level}&u={country|upper}&j={revenue|json}", templates.ContextURL)
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = tmpl.Append(buf[:0], v)
		require.NoError(t, err)
	})
	require.Zero(t, allocs, "Append with room in dst")
	allocs = testing.AllocsPerRun(100, func() {
		_, err := tmpl.Render(v)
		require.NoError(t, err)
	})
	require.LessOrEqual(t, allocs, 1.0, "Render")

	// Path values with dots and %XX, read for dot segments: still nothing.
	var pv templates.Values
	pv.Set(templates.FieldSub1, "1.5%25")
	pv.Set(templates.FieldSub2, "a%2F..b")
	path := templates.MustParse("https://h/p/{sub1}/{sub2}.{sub1}/x?c={click_id}", templates.ContextURL)
	allocs = testing.AllocsPerRun(100, func() {
		var err error
		buf, err = path.Append(buf[:0], &pv)
		require.NoError(t, err)
	})
	require.Zero(t, allocs, "Append of a path with dots and %%XX")
}

func TestTemplate_Concurrent(t *testing.T) {
	t.Parallel()
	tmpl := templates.MustParse("https://h/{event}?c={click_id}&e={email|sha256}&r={revenue|cents}&u={click_id|upper}&m={attempt|map:1=a,2=b}", templates.ContextURL)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				var v templates.Values
				id := strconv.Itoa(g) + "-" + strconv.Itoa(i)
				v.Set(templates.FieldEvent, "ev")
				v.Set(templates.FieldClickID, "c"+id)
				v.Set(templates.FieldEmail, "x")
				v.Set(templates.FieldRevenue, strconv.Itoa(i)+".5")
				v.Set(templates.FieldAttempt, "2")
				got, err := tmpl.Render(&v)
				if err != nil {
					t.Error(err)
					return
				}
				want := "https://h/ev?c=c" + id + "&e=2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881&r=" +
					strconv.Itoa(i*100+50) + "&u=C" + id + "&m=b"
				if got != want {
					t.Errorf("got %s, want %s", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
