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
	// Order names the sequence the delivery takes its turn in (see
	// store.OrderKey), "" when its partner orders none: set at intake, so
	// that a config change does not strand a delivery in a sequence.
	Order string `json:"o,omitempty"`
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
// Version 2 (payloadV2) is version 1 followed by extensions, each a
// uvarint tag and a string, until the end: the event's lifecycle fields
// and the delivery's order. A reader skips a tag it does not know, so a
// later field needs a tag, not a version. A payload with no extension is
// written as version 1, which every worker reads: workers are upgraded
// before the APIs that write version 2 (see CHANGELOG.md).
const (
	payloadV1 = 0x01
	payloadV2 = 0x02
)

// The tags of version 2's extensions. A tag is never reused.
const (
	extTransactionID = 1
	extStatus        = 2
	extClickTime     = 3
	extInstallTime   = 4
	extOrder         = 5
)

// extensions lists a payload's version 2 fields by tag.
func extensions(p *Payload) [5]struct {
	tag uint64
	v   *string
} {
	e := p.Event
	return [...]struct {
		tag uint64
		v   *string
	}{
		{extTransactionID, &e.TransactionID}, {extStatus, &e.Status},
		{extClickTime, &e.Attribution.ClickTime}, {extInstallTime, &e.Attribution.InstallTime},
		{extOrder, &p.Order},
	}
}

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
	size := 32 + len(p.Partner) + len(e.Revenue.Amount)
	for _, s := range eventStrings(e) {
		size += 1 + len(*s)
	}
	for k, v := range e.Params {
		size += 4 + len(k) + len(v)
	}
	version := byte(payloadV1)
	exts := extensions(p)
	for _, x := range exts {
		if *x.v != "" {
			version = payloadV2
			size += 2 + len(*x.v)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, version)
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
	if version == payloadV2 {
		for _, x := range exts {
			if *x.v != "" {
				b = binary.AppendUvarint(b, x.tag)
				b = appendString(b, *x.v)
			}
		}
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
	case b[0] == payloadV1 || b[0] == payloadV2:
		if err := p.decodeV1(b[1:], b[0] == payloadV2); err != nil {
			return nil, fmt.Errorf("decode delivery task: %w", err)
		}
	default:
		return nil, fmt.Errorf("decode delivery task: unknown payload version %#x (%w)", b[0], ErrNewerFormat)
	}
	if p.Delivery == "" || p.Partner == "" || p.Event == nil {
		return nil, fmt.Errorf("decode delivery task: missing delivery, partner or event")
	}
	return &p, nil
}

// decodeV1 reads the binary form after its version byte, and version 2's
// extensions when v2. The event's strings share one allocation.
func (p *Payload) decodeV1(b []byte, v2 bool) error {
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
	if v2 {
		p.Event = e
		exts := extensions(p)
		for d.err == nil && d.off < len(d.buf) {
			tag, v := d.uvarint(), d.string()
			for _, x := range exts {
				if x.tag == tag {
					*x.v = v
				}
			}
		}
		p.Event = nil
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
	if len(b) == 0 || b[0] != payloadV1 && b[0] != payloadV2 {
		p, err := DecodePayload(b)
		if err != nil {
			return "", 0, false
		}
		return p.Partner, p.Enqueued, true
	}
	d := payloadDecoder{buf: b[1:], text: string(b[1:])}
	partner = d.string()
	enqueued = d.varint()
	return partner, enqueued, d.err == nil
}
