package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/ops"
)

// dlqTriageCommand is `postback dlq triage [-p P] [--since D]`: dead
// letters grouped by failure fingerprint.
func dlqTriageCommand() *cli.Command {
	return &cli.Command{
		Name:  "triage",
		Usage: "group dead letters by how they failed, with counts and revenue at risk; replay a group with dlq retry --group",
		Flags: []cli.Flag{
			dlqPartnerFlag("only this partner's"),
			&cli.DurationFlag{Name: "since", Usage: "only those that died within this long (e.g. 2h)"},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			format, err := outputFormat(c)
			if err != nil {
				return err
			}
			if c.NArg() > 0 {
				return usageError("dlq triage takes no arguments")
			}
			if err := notNegative(c, "since"); err != nil {
				return err
			}
			rt, d, err := openDLQ(c)
			if err != nil {
				return err
			}
			defer rt.close()
			groups, err := d.Triage(c.Context, ops.TriageQuery{Partner: c.String("partner"), Since: c.Duration("since")})
			if err != nil {
				return err
			}
			if format == "json" {
				if groups == nil {
					groups = []*ops.TriageGroup{}
				}
				return writeJSON(c.App.Writer, groups)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tPARTNER\tREASON\tSTATUS\tCOUNT\tFIRST\tLAST\tREVENUE AT RISK\tFINGERPRINT")
			for _, g := range groups {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", g.ID, g.Partner, g.Reason, codeText(g.Status), g.Count,
					timeText(g.First), timeText(g.Last), revenueText(g.RevenueAtRisk), cut(g.Fingerprint, 60))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(groups) == 0 {
				fmt.Fprintln(c.App.Writer, "(no dead letters)")
				return nil
			}
			fmt.Fprintln(c.App.Writer, "\nsamples:")
			for _, g := range groups {
				fmt.Fprintf(c.App.Writer, "  %s  %s  %s  %s\n", g.ID, g.SampleID, cut(g.SampleError, 80), g.SampleURL)
			}
			return nil
		},
	}
}

// revenueText is "12.30 EUR, 4.00 USD", "-" for none.
func revenueText(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, strings.TrimSpace(m[c]+" "+c))
	}
	return strings.Join(parts, ", ")
}
