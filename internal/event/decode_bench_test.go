package event_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/postbackhq/postback/internal/event"
)

var benchEvent = []byte(`{"id":"evt-000123","name":"purchase","app_id":"com.example.game","click_id":"ck-evt-000123","attribution":{"partner":"bench","campaign_id":"c1","campaign":"winter"},` +
	`"device":{"idfa":"6D92078A-8246-4BA4-AE5B-76104861E7DC","ip":"203.0.113.7","os":"ios","os_version":"18.1","country":"US"},` +
	`"user":{"customer_user_id":"u1","email":"a@example.com"},"revenue":{"amount":"1.99","currency":"USD"},` +
	`"consent":{"granted":true},"params":{"level":"7"}}`)

// benchEscaped is benchEvent as PHP's json_encode writes it by default
// ("/" escaped), which the fast path hands to encoding/json.
var benchEscaped = bytes.Replace(benchEvent, []byte(`"com.example.game"`), []byte(`"com.example\/game"`), 1)

func BenchmarkDecodeEvent(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.DecodeEvent(benchEvent, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEvent_escaped measures the encoding/json path.
func BenchmarkDecodeEvent_escaped(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.DecodeEvent(benchEscaped, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	ev, err := event.DecodeEvent(benchEvent, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := ev.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntake measures what intake does to one event before routing
// it: DecodeEvent, then the checks intake.Client.prepare runs.
func BenchmarkIntake(b *testing.B) { benchIntake(b, benchEvent) }

// BenchmarkIntake_normalizes is BenchmarkIntake on an event whose every
// identifier needs normalising, with an IP and a country to drop.
func BenchmarkIntake_normalizes(b *testing.B) { benchIntake(b, benchSloppy) }

var benchSloppy = []byte(strings.NewReplacer(
	`"6D92078A-8246-4BA4-AE5B-76104861E7DC"`, `" 6d92078a-8246-4ba4-ae5b-76104861e7dc "`,
	`"203.0.113.7"`, `"999.1.1.1"`, `"US"`, `"usa"`, `"a@example.com"`, `" A@Example.com "`,
).Replace(string(benchEvent)))

func benchIntake(b *testing.B, data []byte) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ev, err := event.DecodeEvent(data, now)
		if err != nil {
			b.Fatal(err)
		}
		if err := ev.Validate(); err != nil {
			b.Fatal(err)
		}
		if _, err := ev.Normalize(false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	ev, err := event.DecodeEvent(benchEvent, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := *ev
		if _, err := n.Normalize(false); err != nil {
			b.Fatal(err)
		}
	}
}
