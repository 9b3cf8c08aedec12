package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/triage"
	"github.com/postbackhq/postback/internal/wire"
)

// TriageQuery selects the dead letters Triage groups.
type TriageQuery struct {
	// Partner limits triage to one partner; "" means every partner.
	Partner string
	// Since keeps the letters that died within this long before now; 0
	// means any time.
	Since time.Duration
}

// TriageGroup is one failure group: dead letters of one partner that
// failed the same way (the same reason, HTTP status and error once its
// numbers, ids, hosts and query values are masked). The JSON names are
// part of the `dlq triage -o json` contract.
type TriageGroup struct {
	ID      string `json:"id"`
	Partner string `json:"partner"`
	Reason  string `json:"reason"`
	Status  int    `json:"status,omitempty"`
	// Fingerprint is the masked error the group's letters share.
	Fingerprint string    `json:"fingerprint"`
	Count       int       `json:"count"`
	First       time.Time `json:"first_dead_at"`
	Last        time.Time `json:"last_dead_at"`
	// SampleID is one of the group's letters; SampleError and SampleURL
	// are its last error and URL, redacted as the logs redact them.
	SampleID    string `json:"sample_id"`
	SampleError string `json:"sample_error,omitempty"`
	SampleURL   string `json:"sample_url,omitempty"`
	// RevenueAtRisk sums the letters' revenue by currency, as exact
	// decimals ("" is revenue with no currency).
	RevenueAtRisk map[string]string `json:"revenue_at_risk"`

	ids  []store.Dead
	sums triage.Sums
}

// ErrUnknownGroup is returned by a replay of a group that has no dead
// letter.
var ErrUnknownGroup = errors.New("no dead letters in this group (see postback dlq triage)")

// Triage groups the selected dead letters by failure fingerprint, the
// largest group first. It reads the triage index the workers keep as they
// write letters, not the letters: it indexes the letters it finds missing
// (written by an older version, or whose indexing failed), and drops from
// the index the letters no longer dead.
func (d *DLQ) Triage(ctx context.Context, q TriageQuery) ([]*TriageGroup, error) {
	partners := []string{q.Partner}
	if q.Partner == "" {
		var err error
		if partners, err = d.store.DLQPartnersAll(ctx); err != nil {
			return nil, err
		}
	}
	var since time.Time
	if q.Since > 0 {
		since = d.cfg.Now().Add(-q.Since)
	}
	var out []*TriageGroup
	for _, p := range partners {
		gs, err := d.triagePartner(ctx, p, since)
		if err != nil {
			return nil, err
		}
		out = append(out, gs...)
	}
	slices.SortStableFunc(out, func(a, b *TriageGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), b.Last.Compare(a.Last), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func (d *DLQ) triagePartner(ctx context.Context, partner string, since time.Time) ([]*TriageGroup, error) {
	// Each shard keeps its own index; the groups are the partner's
	// across them, its letters merged by when they died.
	set := &store.TriageSet{Entries: map[string]store.TriageEntry{}, Groups: map[string]store.TriageGroup{}}
	var dead []store.Dead
	for _, st := range d.store.All() {
		part, err := d.triageShard(ctx, st, partner, since)
		if err != nil {
			return nil, err
		}
		for _, x := range part.Dead {
			dead = append(dead, store.Dead{ID: x.ID, Shard: st.Index(), At: x.At})
		}
		maps.Copy(set.Entries, part.Entries)
		maps.Copy(set.Groups, part.Groups)
	}
	if d.store.Shards() > 1 {
		slices.SortStableFunc(dead, func(a, b store.Dead) int { return a.At.Compare(b.At) })
	}
	byID := map[string]*TriageGroup{}
	var order []*TriageGroup
	for _, dead := range dead {
		e, ok := set.Entries[dead.ID]
		if !ok {
			continue // no longer a dead letter by the time it was read
		}
		g := byID[e.Group]
		if g == nil {
			desc := set.Groups[e.Group]
			g = &TriageGroup{ID: e.Group, Partner: partner, Reason: desc.Reason, Status: desc.Status, Fingerprint: desc.Error,
				SampleID: desc.SampleID, SampleError: desc.SampleError, SampleURL: desc.SampleURL, First: dead.At}
			byID[e.Group] = g
			order = append(order, g)
		}
		g.Count++
		g.Last = dead.At
		g.ids = append(g.ids, dead)
		if err := g.sums.Add(e.Amount, e.Currency); err != nil {
			return nil, fmt.Errorf("dead letter %s: %w", dead.ID, err)
		}
	}
	for _, g := range order {
		g.RevenueAtRisk = g.sums.Map()
		if !slices.ContainsFunc(g.ids, func(x store.Dead) bool { return x.ID == g.SampleID }) {
			g.SampleID = g.ids[len(g.ids)-1].ID // the sample left the DLQ: name a letter still in it
		}
	}
	return order, nil
}

// triageShard reads partner's triage index in shard st, indexing the
// letters it lacks and, when every letter was read, dropping what is
// stale.
func (d *DLQ) triageShard(ctx context.Context, st *store.Store, partner string, since time.Time) (*store.TriageSet, error) {
	set, err := st.TriageRead(ctx, partner, since)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, dead := range set.Dead {
		if _, ok := set.Entries[dead.ID]; !ok {
			missing = append(missing, dead.ID)
		}
	}
	if err := d.indexMissing(ctx, st, partner, missing, set); err != nil {
		return nil, err
	}
	if since.IsZero() {
		// Every dead letter was read: what else the index holds is stale.
		live := make(map[string]bool, len(set.Dead))
		used := map[string]bool{}
		for _, dead := range set.Dead {
			live[dead.ID] = true
			if e, ok := set.Entries[dead.ID]; ok {
				used[e.Group] = true
			}
		}
		var stale, gone []string
		for id := range set.Entries {
			if !live[id] {
				stale = append(stale, id)
			}
		}
		for id := range set.Groups {
			if !used[id] {
				gone = append(gone, id)
			}
		}
		if err := st.DropTriage(ctx, partner, stale, gone); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// indexMissing indexes partner's dead letters ids, which the triage index
// lacks, into set and into the index.
func (d *DLQ) indexMissing(ctx context.Context, st *store.Store, partner string, ids []string, set *store.TriageSet) error {
	const batch = 500
	for len(ids) > 0 {
		chunk := ids[:min(batch, len(ids))]
		ids = ids[len(chunk):]
		dls, err := st.GetDead(ctx, chunk)
		if err != nil {
			return err
		}
		entries := map[string]store.TriageEntry{}
		groups := map[string]store.TriageGroup{}
		for _, dl := range dls {
			fp := triage.Of(partner, dl.Reason, dl.LastCode, dl.LastError)
			e := store.TriageEntry{Group: fp.ID()}
			if pl, err := wire.DecodePayload(dl.Payload); err == nil {
				e.Amount, e.Currency = string(pl.Event.Revenue.Amount), pl.Event.Revenue.Currency
			}
			entries[dl.ID] = e
			set.Entries[dl.ID] = e
			if _, ok := set.Groups[e.Group]; !ok {
				g := store.TriageGroup{ID: e.Group, Reason: fp.Reason, Status: fp.Status, Error: fp.Error,
					SampleID: dl.ID, SampleError: triage.RedactText(dl.LastError)}
				if dl.URL != "" {
					g.SampleURL = triage.RedactURL(dl.URL)
				}
				groups[g.ID] = g
				set.Groups[g.ID] = g
			}
		}
		gs := make([]store.TriageGroup, 0, len(groups))
		for _, g := range groups {
			gs = append(gs, g)
		}
		if err := st.IndexDead(ctx, partner, entries, gs); err != nil {
			return err
		}
	}
	return nil
}

// groupIDs returns the dead letters of group, by partner (one partner: a
// group is one partner's), for a replay. partner narrows the search when
// set.
func (d *DLQ) groupIDs(ctx context.Context, partner, group string, since time.Duration) (string, []store.Dead, error) {
	groups, err := d.Triage(ctx, TriageQuery{Partner: partner, Since: since})
	if err != nil {
		return "", nil, err
	}
	for _, g := range groups {
		if g.ID == group {
			return g.Partner, g.ids, nil
		}
	}
	return "", nil, fmt.Errorf("group %s: %w", group, ErrUnknownGroup)
}
