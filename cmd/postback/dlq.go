package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/retry"
)

// dlqCommand is `postback dlq`: inspect, export, purge and replay the
// per-partner dead-letter queues.
func dlqCommand() *cli.Command {
	return &cli.Command{
		Name:  "dlq",
		Usage: "inspect, export, purge and replay dead letters",
		Subcommands: []*cli.Command{
			dlqListCommand(), dlqShowCommand(), dlqRetryCommand(), dlqPurgeCommand(), dlqExportCommand(),
			dlqTriageCommand(),
		},
	}
}

// openDLQ loads the config, connects to Redis and returns the DLQ.
func openDLQ(c *cli.Context) (*runtime, *ops.DLQ, error) {
	rt, err := setup(c, false)
	if err != nil {
		return nil, nil, err
	}
	d, err := ops.NewDLQ(ops.DLQConfig{Redis: rt.rdb, Config: rt.live, Tracer: rt.tracer})
	if err != nil {
		rt.close()
		return nil, nil, err
	}
	return rt, d, nil
}

func dlqPartnerFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "partner", Aliases: []string{"p"}, Usage: usage}
}

func dlqListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list dead letters, newest first",
		Flags: []cli.Flag{
			dlqPartnerFlag("only this partner's"),
			&cli.StringFlag{Name: "reason", Usage: "only this reason: rejected, blocked, render or exhausted"},
			&cli.DurationFlag{Name: "since", Usage: "only those that died within this long (e.g. 2h)"},
			&cli.IntFlag{Name: "limit", Value: 100, Usage: "at most this many (0: all)"},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			format, err := outputFormat(c)
			if err != nil {
				return err
			}
			if c.NArg() > 0 {
				return usageError("dlq list takes no arguments")
			}
			if err := notNegative(c, "since", "limit"); err != nil {
				return err
			}
			switch r := c.String("reason"); r {
			case "", "rejected", "blocked", "render", "exhausted":
			default:
				return usageError("--reason %q: want rejected, blocked, render or exhausted", r)
			}
			rt, d, err := openDLQ(c)
			if err != nil {
				return err
			}
			defer rt.close()
			q := store.DeadQuery{Partner: c.String("partner"), Reason: c.String("reason"), Limit: c.Int("limit")}
			if s := c.Duration("since"); s > 0 {
				q.Since = time.Now().Add(-s)
			}
			list, err := d.List(c.Context, q)
			if err != nil {
				return err
			}
			if format == "json" {
				if list == nil {
					list = []*ops.DeadLetter{}
				}
				return writeJSON(c.App.Writer, list)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPARTNER\tREASON\tSTATUS\tATTEMPTS\tDIED\tLAST ERROR")
			for _, dl := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", dl.ID, dl.Partner, dl.Reason, codeText(dl.LastCode),
					dl.Attempts, timeText(dl.DeadAt), cut(dl.LastError, 60))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintln(c.App.Writer, "(no dead letters)")
			}
			return nil
		},
	}
}

func dlqShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show a dead letter, its event and every attempt",
		ArgsUsage: "ID",
		Flags:     []cli.Flag{outputFlag()},
		Action: func(c *cli.Context) error {
			format, err := outputFormat(c)
			if err != nil {
				return err
			}
			if c.NArg() != 1 {
				return usageError("dlq show takes one delivery id")
			}
			rt, d, err := openDLQ(c)
			if err != nil {
				return err
			}
			defer rt.close()
			dl, err := d.Show(c.Context, c.Args().First())
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%s is not in a dead-letter queue (see postback deliveries show %[1]s)", c.Args().First())
			}
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(c.App.Writer, dl)
			}
			w := c.App.Writer
			writeRecord(w, dl.Record)
			fmt.Fprintln(w, "\nevent:")
			b, _ := json.MarshalIndent(dl.Event, "  ", "  ")
			fmt.Fprintf(w, "  %s\n", b)
			writeAttempts(w, dl.History)
			return nil
		},
	}
}

func dlqRetryCommand() *cli.Command {
	return &cli.Command{
		Name:      "retry",
		Usage:     "re-enqueue dead letters; they are rendered with the partner's CURRENT template",
		ArgsUsage: "(ID… | --partner P | --all | --group G)",
		Flags: []cli.Flag{
			dlqPartnerFlag("every dead letter of this partner"),
			&cli.BoolFlag{Name: "all", Usage: "every dead letter of every partner"},
			&cli.StringFlag{Name: "group", Usage: "the dead letters of one failure group of dlq triage"},
			&cli.DurationFlag{Name: "since", Usage: "only those that died within this long (e.g. 2h)"},
			&cli.Float64Flag{Name: "rate", Usage: "at most this many re-enqueues per second (0: no cap; the partner's rate_limit still applies)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what would be sent, with the current template; change nothing"},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			format, err := outputFormat(c)
			if err != nil {
				return err
			}
			sel, err := dlqSelection(c)
			if err != nil {
				return err
			}
			if err := notNegative(c, "rate", "since"); err != nil {
				return err
			}
			sel.Since = c.Duration("since")
			rt, d, err := openDLQ(c)
			if err != nil {
				return err
			}
			defer rt.close()
			if err := knownPartner(rt, sel.Partner, "its dead letters are replayed with its current template"); err != nil {
				return err
			}
			dry := c.Bool("dry-run")
			var items []ops.ReplayItem
			o := ops.ReplayOptions{
				Rate: c.Float64("rate"), DryRun: dry,
				OnItem: func(it ops.ReplayItem) {
					if dry || it.Result == "failed" {
						items = append(items, it)
					}
				},
			}
			bar := newProgress(c.App.ErrWriter, dry)
			if bar != nil {
				o.Progress = bar.update
			}
			res, err := d.Replay(c.Context, sel, o)
			if bar != nil {
				bar.finish()
			}
			if err != nil {
				return err
			}
			if format == "json" {
				if items == nil {
					items = []ops.ReplayItem{}
				}
				if err := writeJSON(c.App.Writer, struct {
					DryRun bool             `json:"dry_run"`
					Result ops.ReplayResult `json:"result"`
					Items  []ops.ReplayItem `json:"items"`
				}{dry, res, items}); err != nil {
					return err
				}
			} else {
				writeReplay(c.App.Writer, dry, res, items)
			}
			if res.Failed > 0 {
				return fmt.Errorf("%d dead letter(s) could not be replayed and stay in the DLQ", res.Failed)
			}
			return nil
		},
	}
}

func writeReplay(w io.Writer, dry bool, res ops.ReplayResult, items []ops.ReplayItem) {
	if len(items) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPARTNER\tRESULT\tREQUEST / ERROR")
		for _, it := range items {
			detail := it.Error
			if detail == "" {
				detail = it.Method + " " + it.URL
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.ID, it.Partner, it.Result, detail)
		}
		_ = tw.Flush()
	}
	if dry {
		fmt.Fprintf(w, "dry run: %d selected, %d would be sent, %d fail to render with the current template; nothing changed\n",
			res.Selected, res.Selected-res.RenderErrors-res.Failed-res.Gone, res.RenderErrors)
		return
	}
	fmt.Fprintf(w, "%d selected, %d re-enqueued, %d left the DLQ, %d failed, %d already gone\n",
		res.Selected, res.Enqueued, res.Removed, res.Failed, res.Gone)
}

// progress draws a progress bar on a terminal.
type progress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
	dry bool
}

// newProgress returns a progress bar drawing on w, or nil when w is not a
// terminal (scripts get the summary alone).
func newProgress(w io.Writer, dry bool) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{w: w, dry: dry}
}

func (p *progress) update(done, total int) {
	if p.bar == nil {
		desc := "replaying"
		if p.dry {
			desc = "rendering"
		}
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	_ = p.bar.Set(done)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

func dlqPurgeCommand() *cli.Command {
	return &cli.Command{
		Name:      "purge",
		Usage:     "remove dead letters for good (export them first if in doubt)",
		ArgsUsage: "(ID… | --partner P [--older-than DUR] | --all) [--yes]",
		Flags: []cli.Flag{
			dlqPartnerFlag("every dead letter of this partner"),
			&cli.BoolFlag{Name: "all", Usage: "every dead letter of every partner"},
			&cli.DurationFlag{Name: "older-than", Usage: "only those that died more than this long ago (e.g. 168h)"},
			&cli.BoolFlag{Name: "yes", Usage: "confirm a purge by --partner or --all"},
		},
		Action: func(c *cli.Context) error {
			sel, err := dlqSelection(c)
			if err != nil {
				return err
			}
			if len(sel.IDs) == 0 && !c.Bool("yes") {
				return usageError("dlq purge --partner/--all removes dead letters for good: add --yes to confirm")
			}
			sel.OlderThan = c.Duration("older-than")
			rt, d, err := openDLQ(c)
			if err != nil {
				return err
			}
			defer rt.close()
			n, err := d.Purge(c.Context, sel)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "purged %d dead letter(s)\n", n)
			return nil
		},
	}
}

func dlqExportCommand() *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "print dead letters as NDJSON, one a line (with event and attempts)",
		Flags: []cli.Flag{dlqPartnerFlag("only this partner's")},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError("dlq export takes no arguments")
			}
			rt, d, err := openDLQ(c)
			if err != nil {
				return err
			}
			defer rt.close()
			enc := json.NewEncoder(c.App.Writer)
			enc.SetEscapeHTML(false)
			return d.Export(c.Context, c.String("partner"), func(dl *ops.DeadLetterDetail) error {
				return enc.Encode(dl)
			})
		},
	}
}

// dlqSelection reads ID… | --partner | --all, exactly one of them.
// notNegative refuses a negative value of any of the flags names.
func notNegative(c *cli.Context, names ...string) error {
	for _, n := range names {
		if c.Float64(n) < 0 || c.Duration(n) < 0 || c.Int(n) < 0 {
			return usageError("--%s must not be negative", n)
		}
	}
	return nil
}

// knownPartner refuses a partner id that is not in the config, which
// would otherwise select nothing and look like success.
func knownPartner(rt *runtime, id, why string) error {
	if id == "" || rt.live.Load().Partner(id) != nil {
		return nil
	}
	return fmt.Errorf("partner %q is not in %s (%s)", id, rt.live.Load().Source, why)
}

func dlqSelection(c *cli.Context) (ops.Selection, error) {
	sel := ops.Selection{IDs: c.Args().Slice(), Partner: c.String("partner"), All: c.Bool("all"), Group: c.String("group")}
	n := 0
	// A group may name its partner too.
	for _, set := range []bool{len(sel.IDs) > 0, sel.Partner != "" && sel.Group == "", sel.All, sel.Group != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		what := "delivery ids, --partner P or --all"
		if c.Command.Name == "retry" {
			what = "delivery ids, --partner P, --all or --group G"
		}
		return sel, usageError("%s: give %s (one of them)", c.Command.FullName(), what)
	}
	return sel, nil
}

// ---- shared by dlq show and deliveries show ----

func writeRecord(w io.Writer, r *store.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("id", r.ID)
	row("partner", r.Partner)
	row("event id", r.EventID)
	status := string(r.Status)
	if r.Outcome == retry.Duplicate.String() {
		status += " (duplicate: the partner already had it)"
	}
	row("status", status)
	row("reason", r.Reason)
	row("attempts", fmt.Sprint(r.Attempts))
	if r.Replays > 0 {
		row("replays", fmt.Sprint(r.Replays))
	}
	row("first attempt", timeText(r.First))
	row("last attempt", timeText(r.Last))
	row("last status", codeText(r.LastCode))
	row("last error", r.LastError)
	row("last url", r.URL)
	row("dead since", timeText(r.DeadAt))
	row("updated", timeText(r.Updated))
	_ = tw.Flush()
}

func writeAttempts(w io.Writer, as []store.Attempt) {
	fmt.Fprintf(w, "\nattempts (%d):\n", len(as))
	if len(as) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tAT\tDURATION\tSTATUS\tOUTCOME\tERROR\tURL")
	for _, a := range as {
		n := fmt.Sprint(a.N)
		if a.Replay > 0 {
			n = fmt.Sprintf("%d (replay %d)", a.N, a.Replay)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, timeText(a.At), a.Duration.Round(time.Microsecond),
			codeText(a.Status), a.Outcome, cut(a.Error, 60), a.URL)
	}
	_ = tw.Flush()
	for _, a := range as {
		if a.Response != "" {
			fmt.Fprintf(w, "  response to #%d: %s\n", a.N, cut(oneLine(a.Response), 200))
		}
		if a.Rule != "" {
			fmt.Fprintf(w, "  decided #%d: %s\n", a.N, a.Rule)
		}
	}
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func codeText(code int) string {
	if code == 0 {
		return "-"
	}
	return fmt.Sprint(code)
}

// cut shortens s to n runes for a table cell.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
