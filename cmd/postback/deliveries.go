package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/store"
)

// deliveriesCommand is `postback deliveries show ID`.
func deliveriesCommand() *cli.Command {
	return &cli.Command{
		Name:  "deliveries",
		Usage: "inspect deliveries",
		Subcommands: []*cli.Command{{
			Name:      "show",
			Usage:     "show a delivery's status and attempt history",
			ArgsUsage: "ID",
			Flags:     []cli.Flag{outputFlag()},
			Action: func(c *cli.Context) error {
				format, err := outputFormat(c)
				if err != nil {
					return err
				}
				if c.NArg() != 1 {
					return usageError("deliveries show takes one delivery id")
				}
				rt, err := setup(c, false)
				if err != nil {
					return err
				}
				defer rt.close()
				id := c.Args().First()
				rec, st, err := store.NewSharded(rt.rdb, rt.live.Load().Redis.Served()).GetAny(c.Context, id)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no delivery %s (records are kept for delivery.attempt_log_retention)", id)
				}
				if err != nil {
					return err
				}
				attempts, err := st.Attempts(c.Context, id)
				if err != nil {
					return err
				}
				if format == "json" {
					if attempts == nil {
						attempts = []store.Attempt{}
					}
					// attempt_log is the history's former name, kept
					// for one release.
					return writeJSON(c.App.Writer, struct {
						*store.Record
						History []store.Attempt `json:"attempts_history"`
						Former  []store.Attempt `json:"attempt_log"`
					}{rec, attempts, attempts})
				}
				writeRecord(c.App.Writer, rec)
				writeAttempts(c.App.Writer, attempts)
				return nil
			},
		}},
	}
}
