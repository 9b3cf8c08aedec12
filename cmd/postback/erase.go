package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/store"
)

// eraseCommand is `postback erase (--customer-user-id U | --email E |
// --device-id ID) [--dry-run] --yes`.
func eraseCommand() *cli.Command {
	return &cli.Command{
		Name:      "erase",
		Usage:     "remove one user's personal data from every delivery record, attempt, dead letter and pending task",
		ArgsUsage: "(--customer-user-id U | --email E | --device-id ID) [--dry-run] --yes",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "customer-user-id", Usage: "the user's user.customer_user_id"},
			&cli.StringFlag{Name: "email", Usage: "the user's email (matched trimmed and lowercased, as intake stores it)"},
			&cli.StringFlag{Name: "device-id", Usage: "one of the user's device ids: IDFA, IDFV, GAID or Android id"},
			&cli.BoolFlag{Name: "dry-run", Usage: "count what would be erased, change nothing"},
			&cli.BoolFlag{Name: "yes", Usage: "confirm the erasure: it cannot be undone"},
			&cli.IntFlag{Name: "rate", Value: 20000, Usage: "Redis keys read per second at most, so deliveries do not slow down"},
			outputFlag(),
		},
		Action: func(c *cli.Context) error {
			sub, err := eraseSubject(c)
			if err != nil {
				return err
			}
			dry := c.Bool("dry-run")
			if !dry && !c.Bool("yes") {
				return usageError("erase removes the user's data for good: add --yes to confirm, or --dry-run to count first")
			}
			if c.Int("rate") <= 0 {
				return usageError("--rate %d: want a number of keys per second above 0", c.Int("rate"))
			}
			format, err := outputFormat(c)
			if err != nil {
				return err
			}
			rt, err := setup(c, false)
			if err != nil {
				return err
			}
			defer rt.close()
			x, err := ops.NewEraser(ops.EraseConfig{
				Redis: rt.rdb, Retention: rt.live.Load().Delivery.AttemptLogRetention, Rate: c.Int("rate"), By: "cli",
				Progress: eraseProgress(c.App.ErrWriter), Shards: rt.live.Load().Redis.Served(),
			})
			if err != nil {
				return err
			}
			var e *store.Erasure
			if dry {
				e, err = x.DryRun(c.Context, sub)
			} else if e, err = x.Start(c.Context, sub); err == nil {
				e, err = x.Run(c.Context, e, sub)
			}
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(c.App.Writer, e)
			}
			return printErasure(c.App.Writer, e, dry)
		},
	}
}

// eraseSubject reads the one identifier of an erase command.
func eraseSubject(c *cli.Context) (event.Subject, error) {
	var kind event.SubjectKind
	n := 0
	for flag, k := range map[string]event.SubjectKind{
		"customer-user-id": event.SubjectCustomerUserID, "email": event.SubjectEmail, "device-id": event.SubjectDeviceID,
	} {
		if c.IsSet(flag) {
			kind, n = k, n+1
		}
	}
	if n != 1 {
		return event.Subject{}, usageError("erase takes exactly one of --customer-user-id, --email or --device-id")
	}
	flags := map[event.SubjectKind]string{event.SubjectCustomerUserID: "customer-user-id", event.SubjectEmail: "email", event.SubjectDeviceID: "device-id"}
	sub, err := event.NewSubject(kind, c.String(flags[kind]))
	if err != nil {
		return event.Subject{}, usageError("--%s: %v", flags[kind], err)
	}
	return sub, nil
}

// eraseProgress writes an erasure's progress on one line of a terminal;
// elsewhere it writes nothing.
func eraseProgress(w io.Writer) func(store.Erasure) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	last := time.Time{}
	return func(e store.Erasure) {
		if time.Since(last) < 200*time.Millisecond && e.Status != "done" {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "\r%-8s %d keys read, %d deliveries found", e.Phase, e.Scanned, e.Deliveries)
		if e.Status == "done" {
			fmt.Fprintln(w)
		}
	}
}

func printErasure(w io.Writer, e *store.Erasure, dry bool) error {
	if dry {
		_, err := fmt.Fprintf(w, "dry run: %d deliveries of this user (%d dead letters, %d pending tasks) among %d keys read; nothing changed\n",
			e.Deliveries, e.DeadLetters, e.Tasks, e.Scanned)
		return err
	}
	_, err := fmt.Fprintf(w, "erasure %s done: %d deliveries (%d dead letters), %d tasks and %d attempts rewritten, in %s\n",
		e.ID, e.Deliveries, e.DeadLetters, e.Tasks, e.Attempts, e.Finished.Sub(e.Started).Round(time.Millisecond))
	return err
}
