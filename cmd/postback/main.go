// Command postback sends conversion postbacks to partners: an enqueue API,
// asynq workers that render and send each partner's request, and the ops
// commands that inspect and replay what failed. See README.md.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/version"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a mistake in how the command was called (exit 2).
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// run is main without the exit, for tests: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.Run(flagsFirst(app, args))
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "postback: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "postback",
		Usage:     "send conversion postbacks to partners, reliably",
		Version:   version.Version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"POSTBACK_CONFIG"}, Value: "postback.yaml", Usage: "config file"},
			&cli.StringFlag{Name: "redis-url", EnvVars: []string{"POSTBACK_REDIS_URL"}, Value: "redis://127.0.0.1:6379/0", Usage: "Redis URL (redis://, rediss://, redis+sentinel://, redis+cluster://)"},
			&cli.StringFlag{Name: "log-format", EnvVars: []string{"POSTBACK_LOG_FORMAT"}, Usage: "text or json (default: text on a TTY, else json)"},
			&cli.StringFlag{Name: "log-level", EnvVars: []string{"POSTBACK_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error"},
			otelFlag,
		},
		Commands: []*cli.Command{
			serveCommand(), apiCommand(), workerCommand(),
			enqueueCommand(), sinkCommand(),
			partnersCommand(),
			dlqCommand(), deliveriesCommand(), statsCommand(),
			eraseCommand(),
			benchCommand(),
			versionCommand(),
			completionCommand(), completeCommand(),
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: 2, err: err}
		},
		// Without a command: help; with an unknown one: a usage error.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError("unknown command %q (see postback --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		ExitErrHandler:  func(*cli.Context, error) {}, // run prints and exits
		HideHelpCommand: true,
	}
	setUsageErrors(app.Commands)
	return app
}

// setUsageErrors makes a flag mistake in any command exit 2 with one line,
// instead of urfave/cli's default of exit 1 after the help text.
func setUsageErrors(cmds []*cli.Command) {
	for _, cmd := range cmds {
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
				return &exitError{code: 2, err: err}
			}
		}
		setUsageErrors(cmd.Subcommands)
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:   "version",
		Usage:  "print the version, the commit and the stored formats this build reads and writes",
		Flags:  []cli.Flag{outputFlag()},
		Action: printVersion,
	}
}
