package wire

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
)

func bundlePayloads(n int) []*Payload {
	pls := make([]*Payload, n)
	for i := range pls {
		ev := &event.Event{ID: fmt.Sprintf("evt-%d", i), Name: "purchase", ClickID: "c" + fmt.Sprint(i),
			Timestamp: time.Unix(1_700_000_000, 0).UTC(), Params: map[string]string{"k": "v"}}
		pls[i] = &Payload{Delivery: DeliveryID(ev.ID, "p1"), Partner: "p1", Enqueued: 1_700_000_000_123, Event: ev}
	}
	return pls
}

func TestBundleCodec(t *testing.T) {
	pls := bundlePayloads(3)
	b, err := EncodeBundle(pls)
	require.NoError(t, err)
	got, err := DecodeBundle(b)
	require.NoError(t, err)
	require.Equal(t, pls, got)
	ids, err := TaskDeliveries(TypeDeliverBundle, b)
	require.NoError(t, err)
	require.Equal(t, []string{pls[0].Delivery, pls[1].Delivery, pls[2].Delivery}, ids)

	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":          {nil, "decode bundle: empty payload"},
		"newer version":  {[]byte{0x07, 1}, "decode bundle: unknown version 0x7 (written by a newer postback?)"},
		"no deliveries":  {[]byte{bundleV1, 0}, "decode bundle: bad delivery count"},
		"truncated":      {b[:len(b)-5], "decode bundle: delivery 3 of 3: truncated"},
		"trailing bytes": {append(b[:len(b):len(b)], 0), "decode bundle: 1 bytes after the last delivery"},
		"bad delivery":   {[]byte{bundleV1, 1, 1, 0x09}, "decode bundle: delivery 1 of 1: decode delivery task: unknown payload version 0x9 (written by a newer postback?)"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeBundle(tc.b)
			require.EqualError(t, err, tc.want)
		})
	}
	_, err = TaskDeliveries("email:send", b)
	require.EqualError(t, err, `task type "email:send" is not postback's`)
}
