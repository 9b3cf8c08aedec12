package templates_test

import (
	"errors"
	"net/url"
	"strconv"
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
	{"https://pb.acme.example/.{click_id}/{click_id|upper}?e={click_id|sha256}&k={click_id}", []string{"e", "k"}},
	{"https://pb.acme.example:8443/c?{click_id}=v&j={click_id|json}", []string{"*", "j"}},
	{"https://pb.acme.example/a/{click_id}{event}/%2E{sub1}/../{sub2|default:x}?x=1", []string{"x"}},
}

// pathSegments returns the path of a URL (or URL template) on
// pb.acme.example, up to its query, split at '/'.
func pathSegments(s string) []string {
	_, s, _ = strings.Cut(strings.TrimPrefix(s, "https://"), "/")
	s, _, _ = strings.Cut(s, "?")
	return strings.Split(s, "/")
}

// readsAsDotSegment reports whether some server could take the path
// segment seg for "." or "..": decoded pass after pass, each pass decoding
// the %XX it finds and keeping any other '%', until a pass changes
// nothing; then split at '/' and '\', each piece cut at ';'. It is written
// apart from the package's own check, to test it.
func readsAsDotSegment(seg string) bool {
	for {
		var b strings.Builder
		for i := 0; i < len(seg); i++ {
			if seg[i] == '%' && i+2 < len(seg) {
				if n, err := strconv.ParseUint(seg[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(n))
					i += 2
					continue
				}
			}
			b.WriteByte(seg[i])
		}
		if b.String() == seg {
			break
		}
		seg = b.String()
	}
	for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '/' || r == '\\' }) {
		part, _, _ = strings.Cut(part, ";")
		if part == "." || part == ".." {
			return true
		}
	}
	return false
}

// dotSegmentAt returns the first segment of got, a render of src, that
// holds a macro and reads as a dot segment, and whether there is one.
// Segments of literal text only are the template's own and are left out.
func dotSegmentAt(src, got string) (string, bool) {
	want, segs := pathSegments(src), pathSegments(got)
	for k, seg := range segs {
		if k < len(want) && strings.Contains(want[k], "{") && readsAsDotSegment(seg) {
			return seg, true
		}
	}
	return "", false
}

func FuzzRenderURL(f *testing.F) {
	for _, s := range hostileValues[:len(hostileValues)-1] {
		f.Add(s, uint8(0))
	}
	f.Add("x", uint8(templates.FieldEvent))
	f.Add("%", uint8(templates.FieldRevenue))
	f.Add(".", uint8(templates.FieldEvent))           // {click_id}{event} makes ".."
	f.Add("", uint8(0))                               // .{click_id} makes "."
	f.Add("%252e", uint8(templates.FieldSub1))        // %2E{sub1} makes ".."
	f.Add("x%2F%2E%2e;y", uint8(templates.FieldSub2)) // "x/..;y" decoded

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
			src := fuzzURLs[i].src
			got, err := tmpl.Render(&v)
			if err != nil {
				// The only render error here is a dot segment, and the
				// URL Append leaves behind in that case is whole: it
				// must hold one.
				var rerr *templates.RenderError
				if !errors.As(err, &rerr) || !strings.Contains(rerr.Msg, "dot segment") {
					t.Fatalf("%s: %v", src, err)
				}
				out, _ := tmpl.Append(nil, &v)
				if _, ok := dotSegmentAt(src, string(out)); !ok {
					t.Fatalf("%s: %q refused with no dot segment in %q: %v", src, val, out, err)
				}
				continue
			}
			if seg, ok := dotSegmentAt(src, got); ok {
				t.Fatalf("%s: %q made the dot segment %q: %q", src, val, seg, got)
			}
			if len(pathSegments(got)) != len(pathSegments(src)) {
				t.Fatalf("%s: %q changed the path segments: %q", src, val, got)
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
