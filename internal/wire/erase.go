package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// EraseTaskPayload erases the events of a postback task's payload b (one
// delivery or a bundle) for which mine, called with each decoded payload,
// answers true (event.Event.Erase). It returns the new payload, in the
// current form, and the ids of the deliveries mine chose; the other
// deliveries of a bundle are kept byte for byte. out equals b when nothing
// changed (no delivery chosen, or their events were erased already).
func EraseTaskPayload(taskType string, b []byte, mine func(*Payload) bool) (out []byte, chosen []string, err error) {
	switch taskType {
	case TypeDeliver:
		one, id, err := erasePayload(b, mine)
		if err != nil {
			return nil, nil, err
		}
		if id != "" {
			chosen = append(chosen, id)
		}
		return one, chosen, nil
	case TypeDeliverBundle:
		raws, err := SplitBundle(b)
		if err != nil {
			return nil, nil, err
		}
		changed := false
		for i, raw := range raws {
			one, id, err := erasePayload(raw, mine)
			if err != nil {
				return nil, nil, fmt.Errorf("bundle delivery %d of %d: %w", i+1, len(raws), err)
			}
			if id != "" {
				chosen = append(chosen, id)
			}
			if !bytes.Equal(one, raw) {
				raws[i], changed = one, true
			}
		}
		if !changed {
			return b, chosen, nil
		}
		return joinBundle(raws), chosen, nil
	}
	return nil, nil, fmt.Errorf("task type %q is not postback's", taskType)
}

// ErasePayload is EraseTaskPayload for one delivery's payload (a dead
// letter's).
func ErasePayload(b []byte, mine func(*Payload) bool) (out []byte, chosen string, err error) {
	return erasePayload(b, mine)
}

func erasePayload(b []byte, mine func(*Payload) bool) ([]byte, string, error) {
	pl, err := DecodePayload(b)
	if err != nil {
		return nil, "", err
	}
	if !mine(pl) {
		return b, "", nil
	}
	pl.Event.Erase()
	out, err := EncodePayload(pl)
	if err != nil {
		return nil, "", err
	}
	if bytes.Equal(out, b) {
		return b, pl.Delivery, nil
	}
	return out, pl.Delivery, nil
}

// joinBundle writes the bundle of encoded delivery payloads raws.
func joinBundle(raws [][]byte) []byte {
	b := []byte{bundleV1}
	b = binary.AppendUvarint(b, uint64(len(raws)))
	for _, one := range raws {
		b = binary.AppendUvarint(b, uint64(len(one)))
		b = append(b, one...)
	}
	return b
}
