package dispatcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// An event's claim (the dedup key of DESIGN decision 4) holds its first
// receipt, so that a repeat answers with the same deliveries. It lives for
// the whole dedup window, so it is kept small: one line per delivery, the
// partner id (which config keeps to [a-z0-9_-]) and, for a skipped delivery,
// a tab and the reason (on one line). Delivery ids
// are DeliveryID(event id, partner) and are not stored. The first form, a
// JSON array of Delivery, starts with '[' and is still read.
const claimV1 = '\x01'

func encodeClaim(ds []Delivery) []byte {
	n := 1
	for _, d := range ds {
		n += len(d.Partner) + len(d.Reason) + 2
	}
	b := make([]byte, 1, n)
	b[0] = claimV1
	for i, d := range ds {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, d.Partner...)
		if d.Status == "skipped" {
			b = append(b, '\t')
			b = append(b, strings.ReplaceAll(d.Reason, "\n", " ")...)
		}
	}
	return b
}

// decodeClaim reads a claim of event eventID back into its deliveries.
func decodeClaim(eventID string, b []byte) ([]Delivery, error) {
	switch {
	case len(b) == 0:
		return nil, errors.New("empty claim")
	case b[0] == '[':
		var ds []Delivery
		if err := json.Unmarshal(b, &ds); err != nil {
			return nil, err
		}
		return ds, nil
	case b[0] != claimV1:
		return nil, fmt.Errorf("unknown claim version %#x (written by a newer postback?)", b[0])
	case len(b) == 1:
		return []Delivery{}, nil // routed to no partner
	}
	lines := strings.Split(string(b[1:]), "\n")
	ds := make([]Delivery, len(lines))
	for i, line := range lines {
		partner, reason, skipped := strings.Cut(line, "\t")
		if partner == "" {
			return nil, fmt.Errorf("claim line %d has no partner", i+1)
		}
		ds[i] = Delivery{ID: DeliveryID(eventID, partner), Partner: partner, Status: "queued"}
		if skipped {
			ds[i].Status, ds[i].Reason = "skipped", reason
		}
	}
	return ds, nil
}
