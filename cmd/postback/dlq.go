package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// dlqCommand is being built (its issue is open); it says so rather than pretend.
func dlqCommand() *cli.Command {
	return &cli.Command{
		Name:  "dlq",
		Usage: "postback dlq list|show|retry|purge|export (in progress)",
		Action: func(*cli.Context) error {
			return errors.New("dlq: not built yet")
		},
	}
}
