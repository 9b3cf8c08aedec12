package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/postbackhq/postback/dispatcher"
	"github.com/postbackhq/postback/internal/redistest"
)

// A Go backend enqueues conversions straight to Redis with the same
// validation, de-duplication and routing as POST /v1/events; the workers
// (postback worker) send them.
func ExampleClient_Enqueue() {
	// In production: ConfigFile: "postback.yaml" and your Redis URL.
	srv, err := redistest.Start(redistest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	rdb, err := dispatcher.OpenRedis(srv.URL(0))
	if err != nil {
		log.Fatal(err)
	}
	defer rdb.Close()
	// The client reads only the partners' routing: their URLs and secrets
	// (${env:…}) need not be set in the backend's environment.
	client, err := dispatcher.NewClient(dispatcher.ClientConfig{Redis: rdb, ConfigYAML: []byte(`
api:
  keys: ["example-key-0123456789"]
partners:
  - id: acme_ads
    events: [install, purchase]
    url: "https://pb.acme.example/c?click_id={click_id}&sum={revenue|default:0}"
    headers: {X-Token: "${env:ACME_TOKEN}"}
  - id: analytics
    match: all
    when: 'revenue >= 10'
    url: "https://collect.example/e?id={event_id}"
`)})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx := context.Background()
	ev := &dispatcher.Event{
		ID: "evt-123", Name: "purchase", Timestamp: time.Date(2026, 11, 25, 18, 31, 21, 0, time.UTC),
		ClickID:     "abc",
		Attribution: dispatcher.Attribution{Partner: "acme_ads"},
		Revenue:     dispatcher.Revenue{Amount: "1.99", Currency: "USD"},
	}
	rc, err := client.Enqueue(ctx, ev)
	if err != nil {
		// errors.Is(err, dispatcher.ErrUnavailable): the outcome is
		// unknown; repeat the call (a stored event answers as a
		// duplicate). A *dispatcher.FieldError names the invalid field.
		log.Fatal(err)
	}
	for _, d := range rc.Deliveries {
		status := string(d.Status)
		if d.Reason != "" {
			status += " (" + d.Reason + ")"
		}
		fmt.Println(d.Partner, d.ID, status)
	}

	// The same id again: the same deliveries, nothing sent twice.
	rc, _ = client.Enqueue(ctx, ev)
	fmt.Println("duplicate:", rc.Duplicate, len(rc.Deliveries))

	// An optional field that is invalid does not cost the conversion: it
	// is dropped, and the receipt says so (api.strict: true refuses the
	// event instead, with a *dispatcher.FieldError naming the field).
	rc, err = client.Enqueue(ctx, &dispatcher.Event{ID: "evt-124", Name: "purchase", Device: dispatcher.Device{IP: "999.1.1.1"}})
	var fe *dispatcher.FieldError
	switch {
	case errors.As(err, &fe):
		fmt.Println("refused:", fe.Field)
		return
	case err != nil:
		log.Fatal(err)
	}
	for _, w := range rc.Warnings {
		fmt.Println("warning:", w.Field, w.Message)
	}
	// Output:
	// acme_ads dlv_0f455183f2b5e4a33d09f7aaee084828 queued
	// analytics dlv_895d399174f1d55ad036e06848c063ab skipped (when: condition is false)
	// duplicate: true 2
	// warning: device.ip not an IPv4 or IPv6 address; dropped
}
