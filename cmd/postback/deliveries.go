package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// deliveriesCommand is being built (its issue is open); it says so rather than pretend.
func deliveriesCommand() *cli.Command {
	return &cli.Command{
		Name:  "deliveries",
		Usage: "postback deliveries show ID (in progress)",
		Action: func(*cli.Context) error {
			return errors.New("deliveries: not built yet")
		},
	}
}
