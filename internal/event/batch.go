package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// SplitNDJSON splits NDJSON into its lines, undecoded: one event a line,
// blank lines skipped.
func SplitNDJSON(data []byte) []json.RawMessage {
	var out []json.RawMessage
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// SplitJSON splits a JSON batch into its events, undecoded: an object
// {"events": […]} or a bare array. With single, one bare event object is
// taken too, as a batch of one. The batch object's key is read as the
// events are: exactly "events", once.
func SplitJSON(data []byte, single bool) ([]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return nil, errors.New(`empty body: want {"events": [...]}, a JSON array or NDJSON`)
	case data[0] == '[':
		var arr []json.RawMessage
		if err := json.Unmarshal(data, &arr); err != nil {
			return nil, fmt.Errorf("malformed JSON array: %v", err)
		}
		return arr, nil
	case data[0] != '{':
		return nil, errors.New(`malformed batch: want {"events": [...]}, a JSON array or NDJSON`)
	}
	events, isBatch, err := batchObject(data)
	switch {
	case isBatch || !single:
		return events, err
	case !json.Valid(data):
		return nil, errors.New("malformed JSON event")
	}
	return []json.RawMessage{data}, nil
}

// batchObject reads {"events": […]}. isBatch is false for an object
// whose keys are not events' (an event, for a caller that takes one).
func batchObject(data []byte) (events []json.RawMessage, isBatch bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, false, fmt.Errorf(`malformed batch: want {"events": [...]}: %v`, err)
	}
	seen := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, seen, fmt.Errorf(`malformed batch: want {"events": [...]}: %v`, err)
		}
		key, _ := t.(string)
		switch {
		case key == "events" && seen:
			return nil, true, errors.New("events: repeated key")
		case key == "events":
			seen = true
			if err := dec.Decode(&events); err != nil {
				return nil, true, fmt.Errorf(`malformed batch: want {"events": [...]}: %v`, err)
			}
		case strings.EqualFold(key, "events"):
			return nil, true, fmt.Errorf("%s: unknown key (keys are case-sensitive; want events)", truncate(key, 64))
		default:
			return nil, seen, fmt.Errorf(`malformed batch: unknown key %q (want {"events": [...]})`, truncate(key, 64))
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, seen, fmt.Errorf(`malformed batch: want {"events": [...]}: %v`, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, seen, errors.New("trailing data after the batch object")
	}
	if !seen {
		return nil, false, errors.New(`events: required ({"events": [...]})`)
	}
	if events == nil {
		return nil, true, errors.New(`events: want a list ({"events": [...]})`)
	}
	return events, true, nil
}
