package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/ops"
)

// statsCommand is `postback stats`: per partner, the queues, the last
// hour's outcomes and latencies, and the DLQ.
func statsCommand() *cli.Command {
	return &cli.Command{
		Name:  "stats",
		Usage: "per partner: pending, held, scheduled, in flight, delivered, dead and skipped in the last hour, success rate, p50/p99 latency, DLQ size, oldest pending age",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "partner", Aliases: []string{"p"}, Usage: "only this partner"},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			format, err := outputFormat(c)
			if err != nil {
				return err
			}
			if c.NArg() > 0 {
				return usageError("stats takes no arguments")
			}
			rt, err := setup(c, false)
			if err != nil {
				return err
			}
			defer rt.close()
			if err := knownPartner(rt, c.String("partner"), "see postback partners list"); err != nil {
				return err
			}
			st, err := ops.ReadStats(c.Context, rt.rdb, rt.live.Load(), c.String("partner"), time.Now())
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(c.App.Writer, st)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "PARTNER\tPENDING\tHELD\tSCHEDULED\tIN FLIGHT\tDELIVERED 1H\tDUPLICATE 1H\tDEAD 1H\tSKIPPED 1H\tSUCCESS\tP50\tP99\tDLQ\tOLDEST PENDING\tPAUSED\t")
			for _, p := range st.Partners {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", p.Partner, p.Pending, p.Held, p.Scheduled, p.InFlight,
					p.Delivered1h, p.Duplicate1h, p.Dead1h, skippedText(p), percent(p.SuccessRate), millis(p.LatencyP50), millis(p.LatencyP99),
					p.DLQSize, age(p.OldestPendingAge), pauseText(p.Paused))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if st.Truncated {
				fmt.Fprintf(c.App.Writer, "(queues hold more than %d tasks per state: queue figures count the first ones)\n", ops.StatsScanLimit)
			}
			return writeShardStats(c.App.Writer, st.Shards)
		},
	}
}

// skippedText is the last hour's skips, with the lifecycle rules' share:
// "12 (duplicate_conversion 3)".
func skippedText(p ops.PartnerStats) string {
	s := fmt.Sprint(p.Skipped1h)
	if len(p.SkippedBy1h) == 0 {
		return s
	}
	codes := make([]string, 0, len(p.SkippedBy1h))
	for code := range p.SkippedBy1h {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, code := range codes {
		parts[i] = fmt.Sprintf("%s %d", code, p.SkippedBy1h[code])
	}
	return s + " (" + strings.Join(parts, ", ") + ")"
}

func percent(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", *f*100)
}

func millis(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.1fms", *f)
}

func age(f *float64) string {
	if f == nil {
		return "-"
	}
	return (time.Duration(*f * float64(time.Second))).Round(time.Second).String()
}
