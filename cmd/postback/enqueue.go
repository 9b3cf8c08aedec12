package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// enqueueCommand enqueues events straight to Redis with the Go client: the
// same validation, de-duplication and routing as the API, no HTTP.
func enqueueCommand() *cli.Command {
	return &cli.Command{
		Name:      "enqueue",
		Usage:     "enqueue one event (JSON) or many (NDJSON, or a JSON array) straight to Redis",
		ArgsUsage: "[- | FILE]",
		Description: "Reads --file F, a FILE argument, or stdin (\"-\" or nothing). Prints one line per event:\n" +
			"its index, accepted, duplicate or rejected, the event id and its deliveries or error.\n" +
			"An optional field dropped from an accepted event (invalid once normalised) is a warning\n" +
			"on stderr, one line each; api.strict: true in the config refuses such an event instead.\n" +
			"Exits 1 when any event was rejected or Redis did not confirm its store.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read events from `F` (\"-\" for stdin)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text, or json (one result object a line)"},
		},
		Action: runEnqueue,
	}
}

// enqueueLine is what enqueue prints about one event (as JSON with -o json).
type enqueueLine struct {
	Index      int             `json:"index"`
	Status     string          `json:"status"` // accepted, duplicate, rejected or unavailable
	EventID    string          `json:"event_id,omitempty"`
	Deliveries []wire.Delivery `json:"deliveries,omitzero"`
	Warnings   []event.Warning `json:"warnings,omitempty"`
	Error      string          `json:"error,omitempty"`
	Field      string          `json:"field,omitempty"`
}

func runEnqueue(c *cli.Context) error {
	src := c.String("file")
	if c.NArg() > 1 || (src != "" && c.NArg() > 0) {
		return usageError("enqueue: give the events as --file F, one FILE argument, or on stdin")
	}
	if src == "" {
		src = c.Args().First()
	}
	format := c.String("output")
	if format != "text" && format != "json" {
		return usageError("enqueue: -o %q: want text or json", format)
	}
	data, err := readInput(c, src)
	if err != nil {
		return err
	}
	raws, err := splitEvents(data)
	if err != nil {
		return err
	}

	rt, err := setup(c, false)
	if err != nil {
		return err
	}
	defer rt.close()
	client, err := intake.NewClient(intake.ClientConfig{Redis: rt.rdb, Config: rt.live, Tracer: rt.tracer})
	if err != nil {
		return err
	}
	defer client.Close()

	now := time.Now()
	lines := make([]enqueueLine, len(raws))
	var valid []*event.Event
	var index []int
	for i, raw := range raws {
		lines[i].Index = i
		ev, err := event.DecodeEvent(raw, now)
		if err != nil {
			lines[i].EventID = event.RawEventID(raw)
			lines[i].reject(err)
			continue
		}
		valid = append(valid, ev)
		index = append(index, i)
	}
	for j, res := range client.EnqueueBatch(c.Context, valid) {
		l := &lines[index[j]]
		l.EventID = valid[j].ID
		switch {
		case res.Err == nil:
			l.Status, l.Deliveries, l.Warnings = "accepted", res.Receipt.Deliveries, res.Receipt.Warnings
			if res.Receipt.Duplicate {
				l.Status = "duplicate"
			}
		case errors.Is(res.Err, intake.ErrUnavailable):
			l.Status, l.Error = "unavailable", res.Err.Error()
		default:
			l.reject(res.Err)
		}
	}

	failed := 0
	enc := json.NewEncoder(c.App.Writer)
	for _, l := range lines {
		if l.Status == "rejected" || l.Status == "unavailable" {
			failed++
		}
		for _, w := range l.Warnings {
			fmt.Fprintf(c.App.ErrWriter, "warning: event %d (%s): %s: %s\n", l.Index, l.EventID, w.Field, w.Message)
		}
		if format == "json" {
			if err := enc.Encode(l); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(c.App.Writer, l.text())
	}
	if failed > 0 {
		return fmt.Errorf("enqueue: %d of %d events not accepted (refused, or Redis did not confirm the store: repeat those with the same ids)", failed, len(lines))
	}
	return nil
}

func (l *enqueueLine) reject(err error) {
	l.Status, l.Error = "rejected", err.Error()
	var fe *event.FieldError
	if errors.As(err, &fe) {
		l.Field = fe.Field
	}
}

// text is the line printed for a person:
//
//	0 accepted evt-1 acme_ads=dlv_51bb… everyone=dlv_9f0e… (skipped: when: condition is false)
func (l *enqueueLine) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", l.Index, l.Status)
	if l.EventID != "" {
		fmt.Fprintf(&b, " %s", l.EventID)
	}
	for _, d := range l.Deliveries {
		fmt.Fprintf(&b, " %s=%s", d.Partner, d.ID)
		if d.Status == retry.StatusSkipped {
			fmt.Fprintf(&b, " (skipped: %s)", d.Reason)
		}
	}
	if l.Error != "" {
		fmt.Fprintf(&b, ": %s", l.Error)
	}
	return b.String()
}

// readInput reads the file named src, or stdin for "" and "-".
func readInput(c *cli.Context, src string) ([]byte, error) {
	if src == "" || src == "-" {
		r := c.App.Reader
		if r == nil {
			r = os.Stdin
		}
		return io.ReadAll(r)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	return data, nil
}

// splitEvents reads what `postback enqueue` takes: one JSON event (it
// may span lines), a batch as POST /v1/events/batch takes it ({"events":
// […]} or a JSON array), or NDJSON.
func splitEvents(data []byte) ([]json.RawMessage, error) {
	var raws []json.RawMessage
	if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '[' || json.Valid(t)) {
		var err error
		if raws, err = event.SplitJSON(t, true); err != nil {
			return nil, fmt.Errorf("enqueue: %w", err)
		}
	} else {
		raws = event.SplitNDJSON(data)
	}
	if len(raws) == 0 {
		return nil, errors.New("enqueue: no events in the input")
	}
	return raws, nil
}
