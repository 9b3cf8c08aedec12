package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/store"
)

// partnersPauseCommand is `postback partners pause P [--reason TEXT]`.
func partnersPauseCommand() *cli.Command {
	return &cli.Command{
		Name:      "pause",
		Usage:     "hold a partner's deliveries in every worker, spending no attempt and no max_age, until resume",
		ArgsUsage: "PARTNER",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "reason", Usage: "why, shown by partners list and stats"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("partners pause takes one partner id")
			}
			rt, err := setup(c, false)
			if err != nil {
				return err
			}
			defer rt.close()
			id := c.Args().First()
			p, err := ops.PausePartner(c.Context, rt.rdb, rt.live.Load(), id, c.String("reason"), "cli", time.Now())
			if errors.Is(err, ops.ErrUnknownPartner) {
				return knownPartner(rt, id, "see postback partners list")
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "partner %s paused since %s\n", id, timeText(p.Since))
			return nil
		},
	}
}

// partnersResumeCommand is `postback partners resume P`.
func partnersResumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "let a paused partner's deliveries flow again, paced by its rate_limit",
		ArgsUsage: "PARTNER",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("partners resume takes one partner id")
			}
			rt, err := setup(c, false)
			if err != nil {
				return err
			}
			defer rt.close()
			id := c.Args().First()
			was, err := ops.ResumePartner(c.Context, rt.rdb, rt.live.Load(), id, time.Now())
			if errors.Is(err, ops.ErrUnknownPartner) {
				return knownPartner(rt, id, "see postback partners list")
			}
			if err != nil {
				return err
			}
			if !was {
				fmt.Fprintf(c.App.Writer, "partner %s was not paused\n", id)
				return nil
			}
			fmt.Fprintf(c.App.Writer, "partner %s resumed\n", id)
			return nil
		},
	}
}

// readPauses reads the pauses in force for partners list, which otherwise
// needs no Redis: when Redis cannot be reached, ok is false and the list
// says the pauses are unknown.
func readPauses(c *cli.Context) (pauses map[string]ops.Pause, ok bool) {
	rdb, err := store.OpenRedis(c.String("redis-url"))
	if err != nil {
		return nil, false
	}
	defer func() { _ = rdb.Close() }()
	ctx, cancel := context.WithTimeout(c.Context, 2*time.Second)
	defer cancel()
	pauses, err = ops.Paused(ctx, rdb)
	return pauses, err == nil
}

// pauseText is a pause in a table: "since TIME (reason)", "-" for none.
func pauseText(p *ops.Pause) string {
	if p == nil {
		return "-"
	}
	s := "since " + timeText(p.Since)
	if p.Reason != "" {
		s += " (" + p.Reason + ")"
	}
	return s
}
