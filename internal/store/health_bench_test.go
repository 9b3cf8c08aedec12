package store_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/retry"
)

var evalStats = regexp.MustCompile(`cmdstat_evalsha:calls=(\d+),usec=(\d+)`)

// BenchmarkAddAttempt_Health is one attempt's outcome write without
// counting (off), and counting it for auto_pause and recovery: a
// success (ok) or a failure (fail). redis-µs/op is the script's own time
// in Redis (INFO commandstats).
func BenchmarkAddAttempt_Health(b *testing.B) {
	for _, c := range []struct {
		name    string
		health  bool
		outcome retry.Outcome
	}{{"off", false, retry.Delivered}, {"ok", true, retry.Delivered}, {"fail", true, retry.Retry}} {
		b.Run(c.name, func(b *testing.B) {
			rdb, err := store.OpenRedis(redistest.DB(b))
			if err != nil {
				b.Fatal(err)
			}
			defer rdb.Close()
			s, ctx := store.New(rdb), context.Background()
			a := store.Attempt{N: 1, At: time.Now(), Status: 200, Outcome: c.outcome.String(), URL: "https://pb.example/c?x=1", Duration: time.Millisecond}
			rdb.ConfigResetStat(ctx)
			i := 0
			for b.Loop() {
				m := store.Meta{ID: "dlv_" + strconv.Itoa(i), Partner: "acme", EventID: "e"}
				if c.health {
					m.Health = &store.Health{AutoPause: 1 << 30, Track: true, PauseReason: "auto"}
				}
				if _, err := s.AddAttempt(ctx, m, a, retry.StatusRetrying, time.Hour); err != nil {
					b.Fatal(err)
				}
				i++
			}
			info := rdb.Info(ctx, "commandstats").Val()
			if m := evalStats.FindStringSubmatch(info); m != nil {
				calls, _ := strconv.ParseFloat(m[1], 64)
				usec, _ := strconv.ParseFloat(m[2], 64)
				b.ReportMetric(usec/calls, "redis-µs/op")
			} else {
				b.Log(fmt.Sprintf("no evalsha stats in %q", info))
			}
		})
	}
}
