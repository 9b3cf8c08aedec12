package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// benchCommand is being built (its issue is open); it says so rather than pretend.
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "postback bench (in progress)",
		Action: func(*cli.Context) error {
			return errors.New("bench: not built yet")
		},
	}
}
