package templates_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/postbackhq/postback/templates"
)

// fuzzURLs are the templates FuzzRenderURL places values into, with the
// query keys each must keep. A "*" key is the fuzzed value itself in key
// position.
var fuzzURLs = []struct {
	src  string
	keys []string
}{
	{"https://pb.acme.example/c?click_id={click_id}&goal={event}&sum={revenue|default:0}", []string{"click_id", "goal", "sum"}},
	{"https://pb.acme.example/p/{click_id}/{event|lower}?x=1", []string{"x"}},
	{"https://pb.acme.example/c?r={click_id|raw}&{click_id|raw}=k&m={click_id|map:a=1,*=2}", nil},
	{"https://pb.acme.example/{click_id|raw}/{click_id|upper}?e={click_id|sha256}&k={click_id}", []string{"e", "k"}},
	{"https://pb.acme.example:8443/c?{click_id}=v&j={click_id|json}", []string{"*", "j"}},
}

func FuzzRenderURL(f *testing.F) {
	for _, s := range hostileValues[:len(hostileValues)-1] {
		f.Add(s, uint8(0))
	}
	f.Add("x", uint8(templates.FieldEvent))
	f.Add("%", uint8(templates.FieldRevenue))

	tmpls := make([]*templates.Template, len(fuzzURLs))
	for i, u := range fuzzURLs {
		tmpls[i] = templates.MustParse(u.src, templates.ContextURL)
	}
	f.Fuzz(func(t *testing.T, val string, which uint8) {
		var v templates.Values
		v.Set(templates.FieldClickID, val)
		if f := templates.Field(which); f > 0 && int(f) <= len(templates.Fields()) {
			v.Set(f, val)
		}
		for i, tmpl := range tmpls {
			got, err := tmpl.Render(&v)
			if err != nil {
				t.Fatalf("%s: %v", fuzzURLs[i].src, err)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatalf("%s rendered %q, which does not parse: %v", fuzzURLs[i].src, got, err)
			}
			want, _ := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(fuzzURLs[i].src))
			if u.Scheme != "https" || u.Host != want.Host || u.User != nil || u.Fragment != "" {
				t.Fatalf("%q changed scheme, host, userinfo or fragment: %q", val, got)
			}
			pairs := strings.Split(u.RawQuery, "&")
			if len(pairs) != strings.Count(fuzzURLs[i].src, "&")+1 {
				t.Fatalf("%q changed the query pairs: %q", val, got)
			}
			for _, p := range pairs {
				if strings.Count(p, "=") != 1 || strings.Contains(p, ";") {
					t.Fatalf("%q changed the query pair %q: %q", val, p, got)
				}
			}
			if fuzzURLs[i].keys == nil {
				continue
			}
			q, err := url.ParseQuery(u.RawQuery)
			if err != nil {
				t.Fatalf("%q: query of %q: %v", val, got, err)
			}
			keys := make(map[string]bool)
			for _, k := range fuzzURLs[i].keys {
				if k == "*" {
					k = val
				}
				keys[k] = true
				if _, ok := q[k]; !ok {
					t.Fatalf("%q: key %q missing from %q", val, k, got)
				}
			}
			if len(q) != len(keys) {
				t.Fatalf("%q: keys of %q are %v", val, got, q)
			}
		}
	})
}
