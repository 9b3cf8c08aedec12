package intake

import (
	"testing"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
)

// A claim found by the write that made it (its answer lost, the write
// sent again) is the call's own: the event is new. The same deliveries
// claimed by another call (another nonce), or a claim without a nonce,
// make a repeat.
func TestIntakeDecide_ownClaim(t *testing.T) {
	ds := []wire.Delivery{{ID: wire.DeliveryID("e", "acme"), Partner: "acme", Status: "queued"}}
	mine := wire.EncodeClaim(ds)
	other := wire.EncodeClaim(ds)
	if string(mine[1+8:]) != string(other[1+8:]) || string(mine) == string(other) {
		t.Fatalf("two claims of the same deliveries: %q, %q: want the same lines and different nonces", mine, other)
	}
	cfg := &config.Config{}
	for _, tc := range []struct {
		name  string
		prior []byte
		dup   bool
	}{
		{"own write, sent again", mine, false},
		{"another call's claim", other, true},
		{"version 1 claim", []byte("\x01acme"), true},
	} {
		in := &incoming{ev: &event.Event{ID: "e"}, cfg: cfg, rc: &Receipt{EventID: "e", Deliveries: ds}, claim: mine}
		if err := in.decide(store.Claim{Deliveries: tc.prior}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if in.rc.Duplicate != tc.dup {
			t.Errorf("%s: duplicate = %v, want %v", tc.name, in.rc.Duplicate, tc.dup)
		}
	}
}
