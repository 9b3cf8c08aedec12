package intake_test

import (
	"context"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
)

// normalizeYAML routes on the fields intake normalises: a repeat that
// sent them in another form would otherwise go elsewhere.
const normalizeYAML = `
api:
  keys: ["k-0123456789abcdef"]
partners:
  - id: acme_ads
    url: "https://acme.example/c?c={click_id}"
  - id: us_only
    match: all
    when: 'country == "US"'
    url: "https://us.example/c?e={email|sha256}"
`

const (
	idfaUpper = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
	idfaLower = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
)

// storedEvents decodes the event every pending task carries, by delivery
// id, bundles included.
func (b clientBundle) storedEvents(t *testing.T) map[string]*event.Event {
	t.Helper()
	tasks, err := b.insp.ListPendingTasks(wire.QueueDefault, asynq.PageSize(1000))
	require.NoError(t, err)
	out := map[string]*event.Event{}
	for _, tk := range tasks {
		pls := []*wire.Payload{}
		if tk.Type == wire.TypeDeliverBundle {
			pls, err = wire.DecodeBundle(tk.Payload)
		} else {
			var pl *wire.Payload
			pl, err = wire.DecodePayload(tk.Payload)
			pls = append(pls, pl)
		}
		require.NoError(t, err)
		for _, pl := range pls {
			out[pl.Delivery] = pl.Event
		}
	}
	return out
}

// messy is a conversion as a careless backend sends it: every identifier
// in another form, and an IP and a country that cannot be used.
func messy(id string) *event.Event {
	return &event.Event{ID: id, Name: "install", ClickID: " ck-1 ",
		Attribution: event.Attribution{Partner: " acme_ads "},
		Device:      event.Device{IDFA: " " + idfaLower, GAID: idfaUpper + " ", IP: "999.1.1.1", Country: "usa", OS: "ios"},
		User:        event.User{Email: " A@Example.com "}}
}

// The stored event is the normalised one, routed as such, and the receipt
// names what was dropped.
func TestClient_Enqueue_Normalizes(t *testing.T) {
	t.Parallel()
	b := setupClient(t, normalizeYAML)
	ctx := context.Background()
	ev := messy("n-1")
	rc, err := b.client.Enqueue(ctx, ev)
	require.NoError(t, err)
	require.Equal(t, []event.Warning{
		{Field: "device.ip", Message: "not an IPv4 or IPv6 address; dropped"},
		{Field: "device.country", Message: "not an ISO 3166-1 alpha-2 code; dropped"},
	}, rc.Warnings)
	acme := wire.DeliveryID("n-1", "acme_ads")
	require.Equal(t, []wire.Delivery{
		{ID: acme, Partner: "acme_ads", Status: retry.StatusQueued}, // attribution.partner trimmed
		{ID: wire.DeliveryID("n-1", "us_only"), Partner: "us_only", Status: retry.StatusSkipped, Reason: "when: condition is false"},
	}, rc.Deliveries)

	want := event.Event{ID: "n-1", Name: "install", Timestamp: ev.Timestamp, ClickID: "ck-1",
		Attribution: event.Attribution{Partner: "acme_ads"},
		Device:      event.Device{IDFA: idfaUpper, GAID: idfaLower, OS: "ios"},
		User:        event.User{Email: "a@example.com"}}
	require.Equal(t, want, *ev, "normalised in place")
	stored := b.storedEvents(t)[acme]
	require.NotNil(t, stored)
	require.True(t, stored.Timestamp.Equal(want.Timestamp), "%v, want %v", stored.Timestamp, want.Timestamp)
	stored.Timestamp = want.Timestamp
	require.Equal(t, want, *stored)

	// A country in lower case is routed as the upper-case one it is.
	rc, err = b.client.Enqueue(ctx, &event.Event{ID: "n-2", Name: "install", Device: event.Device{Country: " us "}})
	require.NoError(t, err)
	require.Empty(t, rc.Warnings)
	require.Equal(t, []wire.Delivery{{ID: wire.DeliveryID("n-2", "us_only"), Partner: "us_only", Status: retry.StatusQueued}}, rc.Deliveries)
	require.Equal(t, "US", b.storedEvents(t)[rc.Deliveries[0].ID].Device.Country)
}

// A repeat answers the first receipt, without warnings: the claim keeps
// deliveries only, and nothing of the repeat is stored.
func TestClient_Enqueue_DuplicateHasNoWarnings(t *testing.T) {
	t.Parallel()
	b := setupClient(t, normalizeYAML)
	ctx := context.Background()
	first, err := b.client.Enqueue(ctx, messy("n-d"))
	require.NoError(t, err)
	require.Len(t, first.Warnings, 2)
	again, err := b.client.Enqueue(ctx, messy("n-d"))
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.Deliveries, again.Deliveries)
	require.Nil(t, again.Warnings)
}

// api.strict refuses what the default mode drops, naming the field, and
// stores nothing; the caller's event is left as it was.
func TestClient_Enqueue_Strict(t *testing.T) {
	t.Parallel()
	b := setupClient(t, strictYAML(normalizeYAML))
	ctx := context.Background()
	ev := messy("s-1")
	sent := *ev
	_, err := b.client.Enqueue(ctx, ev)
	var fe *event.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "device.ip", fe.Field)
	require.Equal(t, `"999.1.1.1" is not an IPv4 or IPv6 address`, fe.Message)
	require.Equal(t, sent, *ev)
	require.Empty(t, b.taskIDs(t))

	// What normalising fixes is accepted in strict mode too.
	ev.Device.IP, ev.Device.Country = "", " us"
	rc, err := b.client.Enqueue(ctx, ev)
	require.NoError(t, err)
	require.Empty(t, rc.Warnings)
	require.Len(t, rc.Deliveries, 2)
	got := b.storedEvents(t)[wire.DeliveryID("s-1", "us_only")]
	require.Equal(t, "a@example.com", got.User.Email)
	require.Equal(t, idfaUpper, got.Device.IDFA)
	require.Equal(t, "US", got.Device.Country)

	res := b.client.EnqueueBatch(ctx, []*event.Event{messy("s-2"), {ID: "s-3", Name: "install"}})
	require.ErrorAs(t, res[0].Err, &fe)
	require.Equal(t, "device.ip", fe.Field)
	require.NoError(t, res[1].Err)
}

// Each event of a batch has its own warnings; the stored events, in
// bundles, are the normalised ones.
func TestClient_EnqueueBatch_Warnings(t *testing.T) {
	t.Parallel()
	b := setupClient(t, normalizeYAML)
	res := b.client.EnqueueBatch(context.Background(), []*event.Event{
		messy("b-1"),
		{ID: "b-2", Name: "install", Attribution: event.Attribution{Partner: "acme_ads"}, User: event.User{Email: "nobody"}},
		{ID: "b-3", Name: "install", Attribution: event.Attribution{Partner: "acme_ads"}, Device: event.Device{IDFV: idfaLower}},
	})
	for _, r := range res {
		require.NoError(t, r.Err)
	}
	require.Len(t, res[0].Receipt.Warnings, 2)
	require.Equal(t, []event.Warning{{Field: "user.email", Message: "not an email address; dropped"}}, res[1].Receipt.Warnings)
	require.Nil(t, res[2].Receipt.Warnings)

	stored := b.storedEvents(t)
	require.Len(t, stored, 3)
	require.Equal(t, "a@example.com", stored[wire.DeliveryID("b-1", "acme_ads")].User.Email)
	require.Empty(t, stored[wire.DeliveryID("b-2", "acme_ads")].User.Email)
	require.Equal(t, idfaUpper, stored[wire.DeliveryID("b-3", "acme_ads")].Device.IDFV)
}
