package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/postbackhq/postback/retry"
)

// ErrNewerClaim is a repeat of an event whose claim a newer postback wrote,
// in a form this one cannot read: during an upgrade, an API not yet
// upgraded cannot answer it (503; an upgraded one can).
var ErrNewerClaim = errors.New("the event was first received by a newer postback, whose record of it this one cannot read")

// An event's claim (its de-duplication key) holds its first
// receipt, so that a repeat answers with the same deliveries. It lives for
// the whole dedup window, so it is kept small: one line per delivery, the
// partner id (which config keeps to [a-z0-9_-]) and, for a skipped delivery,
// a tab and the reason (on one line). Delivery ids
// are DeliveryID(event id, partner) and are not stored.
//
// The version byte is followed by a nonce of claimNonceLen random bytes,
// so that a claim tells the call that wrote it from a repeat of the event
// (see intake.decide). Earlier forms are still read: version 1, the same
// without a nonce, and the first, a JSON array of Delivery, which starts
// with '['.
const (
	claimV1       = '\x01'
	claimV2       = '\x02'
	claimNonceLen = 8
)

func EncodeClaim(ds []Delivery) []byte {
	n := 1 + claimNonceLen
	for _, d := range ds {
		n += len(d.Partner) + len(d.Reason) + 2
	}
	b := make([]byte, 1+claimNonceLen, n)
	b[0] = claimV2
	binary.LittleEndian.PutUint64(b[1:], rand.Uint64())
	for i, d := range ds {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, d.Partner...)
		if d.Status == retry.StatusSkipped {
			b = append(b, '\t')
			b = append(b, strings.ReplaceAll(d.Reason, "\n", " ")...)
		}
	}
	return b
}

// DecodeClaim reads a claim of event eventID back into its deliveries.
func DecodeClaim(eventID string, b []byte) ([]Delivery, error) {
	switch {
	case len(b) == 0:
		return nil, errors.New("empty claim")
	case b[0] == '[':
		var ds []Delivery
		if err := json.Unmarshal(b, &ds); err != nil {
			return nil, err
		}
		return ds, nil
	case b[0] == claimV2 && len(b) < 1+claimNonceLen:
		return nil, fmt.Errorf("claim of %d bytes is shorter than its nonce", len(b))
	case b[0] != claimV1 && b[0] != claimV2:
		return nil, fmt.Errorf("%w (claim version %#x)", ErrNewerClaim, b[0])
	}
	body := b[1:]
	if b[0] == claimV2 {
		body = b[1+claimNonceLen:]
	}
	if len(body) == 0 {
		return []Delivery{}, nil // routed to no partner
	}
	lines := strings.Split(string(body), "\n")
	ds := make([]Delivery, len(lines))
	for i, line := range lines {
		partner, reason, skipped := strings.Cut(line, "\t")
		if partner == "" {
			return nil, fmt.Errorf("claim line %d has no partner", i+1)
		}
		ds[i] = Delivery{ID: DeliveryID(eventID, partner), Partner: partner, Status: retry.StatusQueued}
		if skipped {
			ds[i].Status, ds[i].Reason = retry.StatusSkipped, reason
		}
	}
	return ds, nil
}
