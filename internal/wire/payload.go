package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postbackhq/postback/internal/event"
)

// Payload is what a delivery task carries: the event (redacted for the
// partner when consent is missing) and who it goes to. The URL is rendered
// at delivery time from the partner's current config.
type Payload struct {
	Delivery string `json:"d"`
	Partner  string `json:"p"`
	// Enqueued is when the delivery was first enqueued (Unix ms); max_age
	// counts from it, across replays too.
	Enqueued int64        `json:"t"`
	Event    *event.Event `json:"e"`
	// TraceParent is the W3C traceparent of the span that enqueued the
	// delivery (intake, or a replay), when tracing was on there: the
	// delivery's attempts link to it. Empty when tracing was off.
	TraceParent string `json:"tp,omitempty"`
}

func (p *Payload) First() time.Time { return time.UnixMilli(p.Enqueued) }

// A payload is stored in a compact binary form: every pending delivery
// carries one, in Redis, so its size is most of what a delivery costs in
// memory, and decoding it is on every attempt's path. The form is
//
//	version byte (payloadV1)
//	partner                               string
//	enqueued                              varint (Unix ms)
//	timestamp                             varint seconds, uvarint nanoseconds, varint zone offset (s)
//	id … email, amount, currency          strings, in eventStrings order
//	consent                               byte: 0 unset, 1 refused, 2 granted
//	params                                uvarint count, then key and value strings, keys sorted
//
// where a string is its uvarint length and its bytes. The delivery id is
// not stored: it is DeliveryID(event id, partner), so a change to DeliveryID
// needs a new version. Tasks stored as JSON (the first form, which starts
// with '{') are still read.
//
// A payload with a TraceParent is written as
//
//	version byte (payloadV2)
//	traceparent                           string
//	the payloadV1 form, without its version byte
//
// and one without is written as payloadV1, as before, so that tracing off
// changes neither the size of a task nor who can read it. The binary
// decoder is strict (no unknown field, no trailing byte), so a worker that
// predates payloadV2 cannot read one: it defers the task as written by a
// newer postback (ErrNewerFormat) until a newer worker takes it.
const (
	payloadV1 = 0x01
	payloadV2 = 0x02
)

// maxTraceParent bounds the traceparent a payload carries (a W3C
// traceparent of version 00 is 55 bytes).
const maxTraceParent = 256

// eventStrings lists the event's string fields in their payload order.
// Appending a field needs a new payload version.
func eventStrings(e *event.Event) [29]*string {
	a, d, u := &e.Attribution, &e.Device, &e.User
	return [...]*string{
		&e.ID, &e.Name, &e.AppID, &e.ClickID,
		&a.Partner, &a.CampaignID, &a.Campaign, &a.AdgroupID, &a.Adgroup, &a.CreativeID, &a.Creative, &a.SiteID,
		&a.Sub1, &a.Sub2, &a.Sub3, &a.Sub4, &a.Sub5,
		&d.IDFA, &d.IDFV, &d.GAID, &d.AndroidID, &d.IP, &d.UserAgent, &d.OS, &d.OSVersion, &d.Country,
		&u.CustomerUserID, &u.Email,
		&e.Revenue.Currency,
	}
}

func EncodePayload(p *Payload) ([]byte, error) {
	if p.Event == nil {
		return nil, errors.New("encode delivery task: no event")
	}
	e := p.Event
	if p.Delivery != DeliveryID(e.ID, p.Partner) {
		return nil, fmt.Errorf("encode delivery task: delivery %s is not event %s's for partner %s", p.Delivery, e.ID, p.Partner)
	}
	if len(p.TraceParent) > maxTraceParent {
		return nil, fmt.Errorf("encode delivery task: traceparent of %d bytes (at most %d)", len(p.TraceParent), maxTraceParent)
	}
	size := 32 + len(p.Partner) + len(e.Revenue.Amount)
	for _, s := range eventStrings(e) {
		size += 1 + len(*s)
	}
	for k, v := range e.Params {
		size += 4 + len(k) + len(v)
	}
	var b []byte
	if p.TraceParent == "" {
		b = make([]byte, 0, size)
		b = append(b, payloadV1)
	} else {
		b = make([]byte, 0, size+2+len(p.TraceParent))
		b = append(b, payloadV2)
		b = appendString(b, p.TraceParent)
	}
	b = appendString(b, p.Partner)
	b = binary.AppendVarint(b, p.Enqueued)
	b = binary.AppendVarint(b, e.Timestamp.Unix())
	b = binary.AppendUvarint(b, uint64(e.Timestamp.Nanosecond()))
	_, offset := e.Timestamp.Zone()
	b = binary.AppendVarint(b, int64(offset))
	for _, s := range eventStrings(e) {
		b = appendString(b, *s)
	}
	b = appendString(b, string(e.Revenue.Amount))
	switch {
	case e.Consent.Granted == nil:
		b = append(b, 0)
	case *e.Consent.Granted:
		b = append(b, 2)
	default:
		b = append(b, 1)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Params)))
	keys := make([]string, 0, len(e.Params))
	for k := range e.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, e.Params[k])
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// ErrNewerFormat: a task in a form this build does not know, which a
// newer postback wrote. It is not corrupt: a newer worker can run it.
var ErrNewerFormat = errors.New("written by a newer postback?")

// errPayloadShort: the payload ends inside a field.
var errPayloadShort = errors.New("truncated")

func DecodePayload(b []byte) (*Payload, error) {
	var p Payload
	switch {
	case len(b) == 0:
		return nil, errors.New("decode delivery task: empty payload")
	case b[0] == '{':
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("decode delivery task: %w", err)
		}
	case b[0] == payloadV1:
		if err := p.decodeV1(b[1:]); err != nil {
			return nil, fmt.Errorf("decode delivery task: %w", err)
		}
	case b[0] == payloadV2:
		tp, rest, err := cutTraceParent(b[1:])
		if err == nil {
			err = p.decodeV1(rest)
		}
		if err != nil {
			return nil, fmt.Errorf("decode delivery task: %w", err)
		}
		p.TraceParent = tp
	default:
		return nil, fmt.Errorf("decode delivery task: unknown payload version %#x (%w)", b[0], ErrNewerFormat)
	}
	if p.Delivery == "" || p.Partner == "" || p.Event == nil {
		return nil, fmt.Errorf("decode delivery task: missing delivery, partner or event")
	}
	return &p, nil
}

// cutTraceParent reads the traceparent that starts a payloadV2 after its
// version byte, and returns it and the payloadV1 form that follows.
func cutTraceParent(b []byte) (tp string, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, errPayloadShort
	}
	if n == 0 || n > maxTraceParent {
		// Empty is written as payloadV1: one form per payload.
		return "", nil, fmt.Errorf("traceparent of %d bytes (want 1 to %d)", n, maxTraceParent)
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// decodeV1 reads the binary form after its version byte. The event's
// strings share one allocation.
func (p *Payload) decodeV1(b []byte) error {
	d := payloadDecoder{buf: b, text: string(b)}
	p.Partner = d.string()
	p.Enqueued = d.varint()
	sec, nsec, offset := d.varint(), d.uvarint(), d.varint()
	e := new(event.Event)
	for _, s := range eventStrings(e) {
		*s = d.string()
	}
	e.Revenue.Amount = event.Decimal(d.string())
	switch c := d.byte(); c {
	case 0:
	case 1, 2:
		granted := c == 2
		e.Consent.Granted = &granted
	default:
		if d.err == nil {
			d.err = fmt.Errorf("bad consent byte %d", c)
		}
	}
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.buf)-d.off) {
			return errPayloadShort
		}
		e.Params = make(map[string]string, n)
		prev := ""
		for i := range n {
			k := d.string()
			if i > 0 && k <= prev && d.err == nil {
				return fmt.Errorf("params key %q out of order", k[:min(len(k), 64)])
			}
			e.Params[k], prev = d.string(), k
		}
	}
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.buf) {
		return fmt.Errorf("%d unread bytes at the end", len(d.buf)-d.off)
	}
	if nsec >= 1e9 {
		return fmt.Errorf("bad timestamp nanoseconds %d", nsec)
	}
	e.Timestamp = time.Unix(sec, int64(nsec))
	if offset == 0 {
		e.Timestamp = e.Timestamp.UTC()
	} else {
		e.Timestamp = e.Timestamp.In(time.FixedZone("", int(offset)))
	}
	p.Event = e
	if e.ID != "" && p.Partner != "" {
		p.Delivery = DeliveryID(e.ID, p.Partner)
	}
	return nil
}

// payloadDecoder reads the binary form; the first error sticks and every
// later read answers zero.
type payloadDecoder struct {
	buf  []byte
	text string // buf as one string: fields are slices of it
	off  int
	err  error
}

func (d *payloadDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *payloadDecoder) uvarint() uint64 { return readVarint(d, binary.Uvarint) }

func (d *payloadDecoder) varint() int64 { return readVarint(d, binary.Varint) }

// readVarint reads one number with read (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](d *payloadDecoder, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.buf[d.off:])
	if n <= 0 {
		d.fail(errPayloadShort)
		return 0
	}
	d.off += n
	return v
}

func (d *payloadDecoder) byte() byte {
	if d.err != nil || d.off >= len(d.buf) {
		d.fail(errPayloadShort)
		return 0
	}
	d.off++
	return d.buf[d.off-1]
}

func (d *payloadDecoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.buf)-d.off) {
		d.fail(errPayloadShort)
		return ""
	}
	s := d.text[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

// PayloadHead reads only the partner and the first-enqueued time of a
// payload, without decoding the event (a JSON one is decoded whole).
func PayloadHead(b []byte) (partner string, enqueued int64, ok bool) {
	var body []byte // the payloadV1 form after its version byte
	switch {
	case len(b) > 0 && b[0] == payloadV1:
		body = b[1:]
	case len(b) > 0 && b[0] == payloadV2:
		var err error
		if _, body, err = cutTraceParent(b[1:]); err != nil {
			return "", 0, false
		}
	default:
		p, err := DecodePayload(b)
		if err != nil {
			return "", 0, false
		}
		return p.Partner, p.Enqueued, true
	}
	d := payloadDecoder{buf: body, text: string(body)}
	partner = d.string()
	enqueued = d.varint()
	return partner, enqueued, d.err == nil
}
