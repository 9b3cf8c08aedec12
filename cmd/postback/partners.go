package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// partnersCommand is being built (its issue is open); it says so rather than pretend.
func partnersCommand() *cli.Command {
	return &cli.Command{
		Name:  "partners",
		Usage: "postback partners list|validate|render|test (in progress)",
		Action: func(*cli.Context) error {
			return errors.New("partners: not built yet")
		},
	}
}
