package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestClaimRoundTrip(t *testing.T) {
	ds := []Delivery{
		{ID: DeliveryID("evt-1", "acme"), Partner: "acme", Status: "queued"},
		{ID: DeliveryID("evt-1", "big_spenders"), Partner: "big_spenders", Status: "skipped", Reason: "when: condition is false"},
		{ID: DeliveryID("evt-1", "x-y"), Partner: "x-y", Status: "queued"},
	}
	b := EncodeClaim(ds)
	if len(b) > 64 {
		t.Fatalf("claim of 3 deliveries takes %d bytes: %q", len(b), b)
	}
	got, err := DecodeClaim("evt-1", b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ds) {
		t.Fatalf("claim round trip:\nwant %+v\n got %+v", ds, got)
	}

	// No partner at all is a claim too.
	got, err = DecodeClaim("evt-1", EncodeClaim(nil))
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty claim = %#v, %v", got, err)
	}

	// A reason never breaks the line structure.
	got, err = DecodeClaim("e", EncodeClaim([]Delivery{{Partner: "p", Status: "skipped", Reason: "a\nb"}, {Partner: "q", Status: "queued"}}))
	if err != nil || len(got) != 2 || got[0].Reason != "a b" || got[1].Partner != "q" {
		t.Fatalf("claim with a multi-line reason = %+v, %v", got, err)
	}
}

// Claims stored as JSON by an earlier postback are still read.
func TestClaimReadsJSONForm(t *testing.T) {
	ds := []Delivery{{ID: "dlv_old", Partner: "acme", Status: "queued"}}
	b, _ := json.Marshal(ds)
	got, err := DecodeClaim("evt-1", b)
	if err != nil || !reflect.DeepEqual(got, ds) {
		t.Fatalf("JSON claim = %+v, %v", got, err)
	}
}

func TestClaimRefusesCorruption(t *testing.T) {
	for _, c := range []struct {
		b    string
		want string
	}{
		{"", "empty claim"},
		{"\x09acme", "claim version 0x9"},
		{"\x01acme\n\tno partner", "claim line 2 has no partner"},
		{"[{", "unexpected end of JSON input"},
	} {
		if _, err := DecodeClaim("e", []byte(c.b)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("decodeClaim(%q) = %v, want %q", c.b, err, c.want)
		}
	}
}

// Claims of version 1 (no nonce) are still read.
func TestClaimReadsVersion1(t *testing.T) {
	got, err := DecodeClaim("e", []byte("\x01acme\nbig\twhen: no"))
	want := []Delivery{
		{ID: DeliveryID("e", "acme"), Partner: "acme", Status: "queued"},
		{ID: DeliveryID("e", "big"), Partner: "big", Status: "skipped", Reason: "when: no"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("version 1 claim = %+v, %v", got, err)
	}
	if got, err := DecodeClaim("e", []byte("\x01")); err != nil || len(got) != 0 {
		t.Fatalf("empty version 1 claim = %+v, %v", got, err)
	}
	if _, err := DecodeClaim("e", []byte("\x02abc")); err == nil {
		t.Fatal("a version 2 claim shorter than its nonce was read")
	}
}
