package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
)

func samplePayload() *Payload {
	granted := true
	return &Payload{
		Delivery: DeliveryID("evt-1", "acme"), Partner: "acme", Enqueued: 1_764_000_000_123,
		Event: &event.Event{
			ID: "evt-1", Name: "purchase", AppID: "com.example", ClickID: "ck&x=1\x00\n",
			Timestamp:   time.Date(2026, 11, 25, 10, 4, 5, 123456789, time.FixedZone("", -5*3600-30*60)),
			Attribution: event.Attribution{Partner: "acme", CampaignID: "c1", Campaign: "winter ☃", Sub5: "s5"},
			Device:      event.Device{IDFA: "6D92078A-8246-4BA4-AE5B-76104861E7DC", IP: "203.0.113.7", UserAgent: strings.Repeat("ü", 300), Country: "US"},
			User:        event.User{CustomerUserID: "u1", Email: "a@example.com"},
			Revenue:     event.Revenue{Amount: "0.10", Currency: "USD"},
			Consent:     event.Consent{Granted: &granted},
			Params:      map[string]string{"level": "7", "b": "", "a": "x\"y"},
		},
	}
}

// equalPayloads compares through JSON (which is how the first form stored
// them) plus the instant and zone offset of the timestamp.
func equalPayloads(t *testing.T, want, got *Payload) {
	t.Helper()
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if string(w) != string(g) {
		t.Fatalf("payload changed in a round trip:\nwant %s\n got %s", w, g)
	}
	_, wo := want.Event.Timestamp.Zone()
	_, gotOff := got.Event.Timestamp.Zone()
	if !want.Event.Timestamp.Equal(got.Event.Timestamp) || wo != gotOff {
		t.Fatalf("timestamp %v became %v", want.Event.Timestamp, got.Event.Timestamp)
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	refused := false
	cases := map[string]func(*Payload){
		"full":            func(*Payload) {},
		"consent refused": func(p *Payload) { p.Event.Consent.Granted = &refused },
		"consent unset":   func(p *Payload) { p.Event.Consent.Granted = nil },
		"no params":       func(p *Payload) { p.Event.Params = nil },
		"utc":             func(p *Payload) { p.Event.Timestamp = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		"zero time":       func(p *Payload) { p.Event.Timestamp = time.Time{} },
		"before 1970":     func(p *Payload) { p.Event.Timestamp = time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC) },
		"lifecycle": func(p *Payload) {
			p.Event.TransactionID, p.Event.Status = "ord-1", event.StatusRejected
			p.Event.Attribution.ClickTime, p.Event.Attribution.InstallTime = "2026-11-25T10:00:00Z", "2026-11-25T10:01:00.5Z"
			p.Order = "0123abcd"
		},
		"order only": func(p *Payload) { p.Order = "0123abcd" },
		"minimal": func(p *Payload) {
			p.Event = &event.Event{ID: "e", Name: "install", Timestamp: time.Unix(1, 0).UTC()}
			p.Delivery = DeliveryID("e", p.Partner)
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			p := samplePayload()
			mutate(p)
			b, err := EncodePayload(p)
			require.NoError(t, err)
			got, err := DecodePayload(b)
			require.NoError(t, err)
			equalPayloads(t, p, got)
			again, _ := EncodePayload(got)
			require.Equal(t, b, again, "encoding is not deterministic")
		})
	}
}

// A payload without lifecycle fields is written in the first binary
// version, which workers of every release read; one with them in the
// second, whose reader skips the extensions it does not know.
func TestPayloadVersions(t *testing.T) {
	p := samplePayload()
	b, err := EncodePayload(p)
	require.NoError(t, err)
	require.Equal(t, byte(payloadV1), b[0])

	p.Event.TransactionID = "ord-1"
	b, err = EncodePayload(p)
	require.NoError(t, err)
	require.Equal(t, byte(payloadV2), b[0])
	// A newer writer's extension, tag 99, is skipped.
	newer := appendString(append(append([]byte{}, b...), 99), "from the future")
	got, err := DecodePayload(newer)
	require.NoError(t, err)
	equalPayloads(t, p, got)
	// Cut inside an extension, it is refused.
	_, err = DecodePayload(newer[:len(newer)-3])
	require.ErrorContains(t, err, "truncated")
}

// Tasks enqueued by a postback that stored payloads as JSON are still read.
func TestPayloadReadsJSONForm(t *testing.T) {
	p := samplePayload()
	old, err := json.Marshal(p)
	require.NoError(t, err)
	got, err := DecodePayload(old)
	require.NoError(t, err)
	equalPayloads(t, p, got)
}

func TestPayloadIsCompact(t *testing.T) {
	p := samplePayload()
	p.Event.Device.UserAgent = "Mozilla/5.0"
	b, _ := EncodePayload(p)
	j, _ := json.Marshal(p)
	if len(b)*2 > len(j) {
		t.Fatalf("binary payload is %d bytes, JSON %d: expected under half", len(b), len(j))
	}
	t.Logf("binary %d B, JSON %d B", len(b), len(j))
}

func TestPayloadRefusesCorruption(t *testing.T) {
	good, _ := EncodePayload(samplePayload())
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":           {nil, "empty payload"},
		"unknown version": {append([]byte{0x7f}, good[1:]...), "unknown payload version 0x7f"},
		"trailing bytes":  {append(append([]byte{}, good...), 0), "1 unread bytes"},
		"bad json":        {[]byte(`{"d":`), "decode delivery task"},
		"no event":        {[]byte(`{"d":"x","p":"y"}`), "missing delivery, partner or event"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodePayload(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	// Every truncation is an error, never a panic or a half-read payload.
	for n := 1; n < len(good); n++ {
		if _, err := DecodePayload(good[:n]); err == nil {
			t.Fatalf("payload cut to %d of %d bytes was accepted", n, len(good))
		}
	}
}

func FuzzDecodePayload(f *testing.F) {
	good, _ := EncodePayload(samplePayload())
	f.Add(good)
	old, _ := json.Marshal(samplePayload())
	f.Add(old)
	f.Add([]byte{payloadV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePayload(b)
		if err != nil || b[0] != payloadV1 {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		again, err := EncodePayload(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(b) {
			t.Fatalf("decode then encode changed the payload:\n%x\n%x", b, again)
		}
	})
}

func TestPayloadRefusesUnsortedParams(t *testing.T) {
	p := samplePayload()
	p.Event.Params = map[string]string{"a": "1"}
	b, _ := EncodePayload(p)
	// Swap in a second pair that sorts before the first.
	b = b[:len(b)-len("\x01\x01a\x011")] // count, key, value
	b = append(b, "\x02\x01b\x012\x01a\x011"...)
	if _, err := DecodePayload(b); err == nil || !strings.Contains(err.Error(), `params key "a" out of order`) {
		t.Fatalf("err = %v", err)
	}
}

func TestPayloadHead(t *testing.T) {
	p := samplePayload()
	bin, _ := EncodePayload(p)
	old, _ := json.Marshal(p)
	for name, b := range map[string][]byte{"binary": bin, "json": old} {
		partner, enqueued, ok := PayloadHead(b)
		if !ok || partner != "acme" || enqueued != p.Enqueued {
			t.Fatalf("%s: payloadHead = %q, %d, %v", name, partner, enqueued, ok)
		}
	}
	for _, b := range [][]byte{nil, bin[:3], []byte("{"), {0x7f}} {
		if _, _, ok := PayloadHead(b); ok {
			t.Fatalf("payloadHead(%q) accepted", b)
		}
	}
}
