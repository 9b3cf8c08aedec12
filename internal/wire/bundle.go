package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// A bundle is one asynq task that carries several deliveries to the same
// partner, made when a batch of events reaches intake together. asynq
// takes one task per Redis round trip and writes it three times (enqueue,
// dequeue, done); a bundle of n pays that once for n deliveries.
//
// Every delivery in a bundle keeps what a delivery has: its id, record,
// attempts, Idempotency-Key, retries and dead letter. A bundle only makes
// first attempts. Whatever is left to do after them (a retry, a deferral)
// is handed to the delivery's own task, with the delay it asked for and
// the delivery id as the task id, exactly the task intake would have made.
// So a bundle that runs again (the worker died under it) re-sends only what
// had no answer recorded: delivered ones are final, and ones attempted
// before are handed off again, which conflicts harmlessly with the task
// handed off the first time.
const (
	// TypeDeliverBundle is the asynq task type of a bundle of deliveries.
	//
	// It must not start with TypeDeliver: asynq's ServeMux routes a type to
	// the longest registered prefix, and a worker older than bundles would
	// hand bundles to its delivery handler, which archives what it cannot
	// read. Unrouted, a bundle is retried until a worker that knows it
	// takes it.
	TypeDeliverBundle = "postback:bundle"
	// bundleV1 is the version byte of a bundle's payload:
	//
	//	version byte (bundleV1)
	//	count   uvarint
	//	count × (uvarint length, delivery payload as encodePayload writes it)
	//
	// It is unlike any delivery payload's first byte, so that one is never
	// read as the other.
	bundleV1 = 0xb1
)

func EncodeBundle(pls []*Payload) ([]byte, error) {
	b := []byte{bundleV1}
	b = binary.AppendUvarint(b, uint64(len(pls)))
	for _, pl := range pls {
		one, err := EncodePayload(pl)
		if err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(one)))
		b = append(b, one...)
	}
	return b, nil
}

func DecodeBundle(b []byte) ([]*Payload, error) {
	raws, err := SplitBundle(b)
	if err != nil {
		return nil, err
	}
	pls := make([]*Payload, len(raws))
	for i, raw := range raws {
		if pls[i], err = DecodePayload(raw); err != nil {
			return nil, fmt.Errorf("decode bundle: delivery %d of %d: %w", i+1, len(raws), err)
		}
	}
	return pls, nil
}

// SplitBundle returns the encoded delivery payloads of bundle b, without
// decoding them.
func SplitBundle(b []byte) ([][]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("decode bundle: empty payload")
	}
	if b[0] != bundleV1 {
		return nil, fmt.Errorf("decode bundle: unknown version %#x (%w)", b[0], ErrNewerFormat)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > MaxBundle {
		return nil, fmt.Errorf("decode bundle: bad delivery count")
	}
	b = b[k:]
	raws := make([][]byte, 0, n)
	for i := range n {
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, fmt.Errorf("decode bundle: delivery %d of %d: %w", i+1, n, errPayloadShort)
		}
		raws = append(raws, b[k:k+int(size)])
		b = b[k+int(size):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("decode bundle: %d bytes after the last delivery", len(b))
	}
	return raws, nil
}

// NewBundleTask builds the asynq task of deliveries pls, all to partner p.
// Its deadline leaves room for a wait for the worker's concurrency and one
// attempt after it; a delivery that cannot start in time is handed off.
func NewBundleTask(pls []*Payload, timeout time.Duration, queue string) (*asynq.Task, error) {
	b, err := EncodeBundle(pls)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeDeliverBundle, b,
		asynq.TaskID(BundleID(pls)),
		asynq.Queue(queue),
		asynq.MaxRetry(TaskMaxRetry),
		asynq.Timeout(2*timeout+TaskTimeoutSlack+StartSlack),
	), nil
}

// BundleID is the task id of the bundle of pls: the same deliveries make
// the same id, so a bundle sent again after a lost answer conflicts with
// itself rather than being stored twice.
func BundleID(pls []*Payload) string {
	h := sha256.New()
	for _, pl := range pls {
		h.Write([]byte(pl.Delivery))
		h.Write([]byte{0})
	}
	return "b-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// StartSlack is what a delivery that starts late keeps, beyond its
// partner's timeout, before its task's deadline: for its reads, the gate,
// and its outcome write.
const StartSlack = 10 * time.Second

// TaskDeliveries returns the ids of the deliveries an asynq task of
// postback's carries: one for a delivery task, several for a bundle, to
// see into queued tasks with asynq's Inspector.
func TaskDeliveries(taskType string, payload []byte) ([]string, error) {
	switch taskType {
	case TypeDeliver:
		pl, err := DecodePayload(payload)
		if err != nil {
			return nil, err
		}
		return []string{pl.Delivery}, nil
	case TypeDeliverBundle:
		pls, err := DecodeBundle(payload)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(pls))
		for i, pl := range pls {
			ids[i] = pl.Delivery
		}
		return ids, nil
	}
	return nil, fmt.Errorf("task type %q is not postback's", taskType)
}

// TaskHead reads a postback task's partner, first-enqueued time and number
// of deliveries without decoding its events.
func TaskHead(taskType string, b []byte) (partner string, enqueued int64, n int, ok bool) {
	if taskType != TypeDeliverBundle {
		partner, enqueued, ok = PayloadHead(b)
		return partner, enqueued, 1, ok
	}
	raws, err := SplitBundle(b)
	if err != nil {
		return "", 0, 0, false
	}
	// The first delivery's: all share the partner, and were enqueued together.
	partner, enqueued, ok = PayloadHead(raws[0])
	return partner, enqueued, len(raws), ok
}

// MaxBundle is the most deliveries one bundle may carry.
const MaxBundle = 1000
