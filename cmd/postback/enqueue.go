package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// enqueueCommand is being built (its issue is open); it says so rather than pretend.
func enqueueCommand() *cli.Command {
	return &cli.Command{
		Name:  "enqueue",
		Usage: "postback enqueue (in progress)",
		Action: func(*cli.Context) error {
			return errors.New("enqueue: not built yet")
		},
	}
}
