package templates_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/postbackhq/postback/templates"
)

func Example() {
	t := templates.MustParse(
		"https://pb.acme.example/c?click_id={click_id}&goal={event|map:install=1,purchase=2}&sum={revenue|default:0}&ts={timestamp|unix}",
		templates.ContextURL)

	var v templates.Values
	v.Set(templates.FieldClickID, "abc&x=1")
	v.Set(templates.FieldEvent, "purchase")
	v.SetTime(time.Date(2026, 11, 25, 18, 31, 21, 0, time.UTC))

	u, err := t.Render(&v)
	fmt.Println(u, err)
	// Output: https://pb.acme.example/c?click_id=abc%26x%3D1&goal=2&sum=0&ts=1795631481 <nil>
}

func ExampleParse_json() {
	t, err := templates.Parse(`{"click":"{click_id}","amount":{revenue|json},"cents":{revenue|cents|json}}`, templates.ContextJSON)
	if err != nil {
		panic(err)
	}
	var v templates.Values
	v.Set(templates.FieldClickID, `say "hi"`)
	v.Set(templates.FieldRevenue, "1.99")
	body, _ := t.Render(&v)
	fmt.Println(body)
	// Output: {"click":"say \"hi\"","amount":1.99,"cents":199}
}

func ExampleError() {
	src := "https://pb.acme.example/c?click_id={clik_id}"
	_, err := templates.Parse(src, templates.ContextURL)
	var perr *templates.Error
	if errors.As(err, &perr) {
		fmt.Printf("col %d: %s\n", perr.Offset+1, perr.Msg)
	}
	// Output: col 36: unknown macro {clik_id} (did you mean {click_id}?)
}

func ExampleTemplate_Append() {
	t := templates.MustParse("Bearer {params.token}", templates.ContextHeader)
	var v templates.Values
	v.SetParam("token", "s3cr3t")
	buf := make([]byte, 0, 256) // reused across renders: no allocation
	buf, err := t.Append(buf[:0], &v)
	fmt.Println(string(buf), err)
	// Output: Bearer s3cr3t <nil>
}
