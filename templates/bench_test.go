package templates_test

import (
	"io"
	"net/url"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/valyala/fasttemplate"

	"github.com/postbackhq/postback/templates"
)

// benchURL has seven macros in query position, all query-escaped in every
// variant below.
const benchURL = "https://pb.acme.example/c?click_id={click_id}&goal={event}&sum={revenue}&cur={currency}&ts={timestamp}&cid={campaign_id}&dev={idfa}"

var benchTime = time.Date(2026, 11, 25, 18, 31, 21, 0, time.UTC)

func benchValues() map[string]string {
	return map[string]string{
		"click_id":    "abc-123 xyz",
		"event":       "purchase",
		"revenue":     "1.99",
		"currency":    "USD",
		"timestamp":   benchTime.Format(time.RFC3339),
		"campaign_id": "c1/winter&sale",
		"idfa":        "6D92078A-8246-4BA4-AE5B-76104861E7DC",
	}
}

func BenchmarkRender(b *testing.B) {
	m := benchValues()

	b.Run("postback", func(b *testing.B) {
		tmpl := templates.MustParse(benchURL, templates.ContextURL)
		var v templates.Values
		for name, val := range m {
			if f, ok := templates.FieldByName(name); ok && f != templates.FieldTimestamp {
				v.Set(f, val)
			}
		}
		v.SetTime(benchTime)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tmpl.Render(&v); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("fasttemplate", func(b *testing.B) {
		tmpl := fasttemplate.New(benchURL, "{", "}")
		b.ReportAllocs()
		for b.Loop() {
			_ = tmpl.ExecuteFuncString(func(w io.Writer, tag string) (int, error) {
				return io.WriteString(w, url.QueryEscape(m[tag]))
			})
		}
	})

	b.Run("text_template", func(b *testing.B) {
		src := benchURL
		for name := range m {
			src = strings.ReplaceAll(src, "{"+name+"}", "{{urlquery ."+name+"}}")
		}
		tmpl := template.Must(template.New("url").Parse(src))
		var sb strings.Builder
		b.ReportAllocs()
		for b.Loop() {
			sb.Reset()
			if err := tmpl.Execute(&sb, m); err != nil {
				b.Fatal(err)
			}
			_ = sb.String()
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	tmpl := templates.MustParse(benchURL+"&e={email|sha256}&c={revenue|cents}&t={timestamp|unix}", templates.ContextURL)
	var v templates.Values
	for name, val := range benchValues() {
		if f, ok := templates.FieldByName(name); ok && f != templates.FieldTimestamp {
			v.Set(f, val)
		}
	}
	v.Set(templates.FieldEmail, "A@Example.com")
	v.SetTime(benchTime)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = tmpl.Append(buf[:0], &v); err != nil {
			b.Fatal(err)
		}
	}
}
