package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/postbackhq/postback/internal/ops"
)

// writeShardStats prints each shard's deliveries, when there is more
// than one: a shard being drained (redis.previous_shards) is empty when its
// line is all zeros.
func writeShardStats(w io.Writer, shards []ops.ShardStats) error {
	if len(shards) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SHARD\tQUEUE\tPENDING\tSCHEDULED\tIN FLIGHT\tDLQ\t")
	for _, s := range shards {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t\n", s.Shard, s.Queue, s.Pending, s.Scheduled, s.InFlight, s.DLQSize)
	}
	return tw.Flush()
}
