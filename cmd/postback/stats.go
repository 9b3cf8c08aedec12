package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// statsCommand is being built (its issue is open); it says so rather than pretend.
func statsCommand() *cli.Command {
	return &cli.Command{
		Name:  "stats",
		Usage: "postback stats (in progress)",
		Action: func(*cli.Context) error {
			return errors.New("stats: not built yet")
		},
	}
}
