package delivery_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/store"
)

// BenchmarkPauses_Of is the pause check each delivery makes: a lookup in
// the worker's copy of the pauses, here of 100 partners, 10 of them paused.
func BenchmarkPauses_Of(b *testing.B) {
	m := map[string]store.PartnerPause{}
	for i := range 100 {
		m["partner-"+strconv.Itoa(i)] = store.PartnerPause{Paused: i%10 == 0, Since: time.Now()}
	}
	var p delivery.Pauses
	p.Set(m)
	var held int
	b.ReportAllocs()
	for b.Loop() {
		if p.Of("partner-42").Paused {
			held++
		}
	}
	_ = held
}
