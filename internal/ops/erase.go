package ops

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/wire"
)

// ErrErasureBusy is returned by Eraser.Run when another process runs that
// erasure now.
var ErrErasureBusy = errors.New("another process runs this erasure now")

// EraseConfig configures an Eraser.
type EraseConfig struct {
	// Redis holds what is erased. Required.
	Redis redis.UniversalClient
	// Retention is attempt_log_retention: how long an erasure's own record
	// is kept once done. Default config.DefaultAttemptLogRetention.
	Retention time.Duration
	// Rate caps the keys the scans read per second, so that an erasure
	// does not slow deliveries down. Default 20,000.
	Rate int
	// Settle is how often an erasure looks again at what a worker held
	// (a task in flight, an attempt under way). Default 250ms.
	Settle time.Duration
	// Progress, if set, is called with the record as the erasure goes.
	Progress func(store.Erasure)
	// By is who asked, kept in the record: "cli" or "api". Default "cli".
	By string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Shards is how many shards hold deliveries (redis.shards, or
	// redis.previous_shards when larger): their queues are erased from too.
	// Default 1.
	Shards int
}

// Eraser erases one user's personal data from everything postback
// stores: delivery records, attempt histories, dead letters and pending
// tasks (queued, scheduled, retrying, bundled). It finds them by scanning
// the database (docs/design.md says why there is no index): a task's or a
// dead letter's event names its user; a record without one (delivered,
// skipped) is the user's when its URLs, errors or responses carry one of
// the user's identifiers, in any form a template gives.
type Eraser struct {
	cfg    EraseConfig
	store  *store.Store
	queues []string // every shard's delivery queues
}

// NewEraser returns an Eraser.
func NewEraser(cfg EraseConfig) (*Eraser, error) {
	if cfg.Redis == nil {
		return nil, errors.New("ops: EraseConfig needs Redis")
	}
	cfg.Retention = cmp.Or(cfg.Retention, config.DefaultAttemptLogRetention)
	cfg.Rate = cmp.Or(cfg.Rate, 20000)
	cfg.Settle = cmp.Or(cfg.Settle, 250*time.Millisecond)
	cfg.By = cmp.Or(cfg.By, "cli")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Shards = max(cfg.Shards, 1)
	return &Eraser{cfg: cfg, store: store.NewSharded(cfg.Redis, cfg.Shards), queues: wire.Queues(cfg.Shards)}, nil
}

// Start records an erasure of sub, not yet run, and returns it. When an
// erasure of the same identifier is already running (or was left
// unfinished by a process that died), it returns that one: asking again
// resumes it.
func (x *Eraser) Start(ctx context.Context, sub event.Subject) (*store.Erasure, error) {
	running, err := x.store.RunningErasures(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range running {
		if e.Kind == string(sub.Kind) && hmac.Equal([]byte(e.HMAC), []byte(subjectHMAC(e.Key, sub))) {
			return e, nil
		}
	}
	id, key := make([]byte, 12), make([]byte, 16)
	_, _ = rand.Read(id)
	_, _ = rand.Read(key)
	e := &store.Erasure{
		ID: "er_" + hex.EncodeToString(id), Status: "running", Kind: string(sub.Kind),
		Key: hex.EncodeToString(key), Phase: "scan", Started: x.cfg.Now().UTC(), By: x.cfg.By,
	}
	e.HMAC = subjectHMAC(e.Key, sub)
	if err := x.store.SaveErasure(ctx, e, x.cfg.Retention); err != nil {
		return nil, err
	}
	return e, nil
}

// subjectHMAC is HMAC-SHA256 of the subject's kind and value, keyed with
// hex key, in hex.
func subjectHMAC(key string, sub event.Subject) string {
	k, _ := hex.DecodeString(key)
	m := hmac.New(sha256.New, k)
	m.Write([]byte(sub.Kind))
	m.Write([]byte{0})
	m.Write([]byte(sub.Value))
	return hex.EncodeToString(m.Sum(nil))
}

// Get returns erasure id's record, or store.ErrNotFound.
func (x *Eraser) Get(ctx context.Context, id string) (*store.Erasure, error) {
	return x.store.GetErasure(ctx, id)
}

// Run runs erasure e of sub (from Start) to its end and returns its final
// record. It holds the erasure's lease meanwhile (ErrErasureBusy when
// another process holds it). An erasure stopped half way (ctx ended, the
// process died) keeps what it found; Start and Run again finish it.
func (x *Eraser) Run(ctx context.Context, e *store.Erasure, sub event.Subject) (*store.Erasure, error) {
	if e.Status == "done" {
		return e, nil
	}
	j := x.newJob(e, sub, false)
	j.token = hex.EncodeToString(j.newToken())
	if err := j.hold(ctx); err != nil {
		return nil, err
	}
	defer func() { _ = x.store.ReleaseErasure(context.WithoutCancel(ctx), e.ID, j.token) }()
	todo, err := x.store.ErasureTodo(ctx, e.ID)
	if err != nil {
		return nil, err
	}
	for _, item := range todo {
		j.addItem(item)
	}
	if err := j.run(ctx); err != nil {
		return nil, err
	}
	e.Status, e.Phase, e.Finished = "done", "", x.cfg.Now().UTC()
	if err := x.store.SaveErasure(ctx, e, x.cfg.Retention); err != nil {
		return nil, err
	}
	x.progress(e)
	return e, nil
}

// DryRun finds what an erasure of sub would erase and counts it (keys
// scanned, deliveries, dead letters, tasks), writing nothing.
func (x *Eraser) DryRun(ctx context.Context, sub event.Subject) (*store.Erasure, error) {
	e := &store.Erasure{Status: "dry_run", Kind: string(sub.Kind), Started: x.cfg.Now().UTC(), By: x.cfg.By}
	j := x.newJob(e, sub, true)
	if err := j.find(ctx); err != nil {
		return nil, err
	}
	j.count()
	e.Phase, e.Finished = "", x.cfg.Now().UTC()
	return e, nil
}

func (x *Eraser) progress(e *store.Erasure) {
	if x.cfg.Progress != nil {
		x.cfg.Progress(*e)
	}
}

// job is one run of an erasure.
type job struct {
	x     *Eraser
	e     *store.Erasure
	sub   event.Subject
	dry   bool
	token string
	lim   *rate.Limiter
	// match are the user's identifiers (the one asked for, and those of
	// the user's events found), to find records; personal adds the events'
	// IP addresses and user agents, to remove from what was found.
	match, personal *needles
	deliveries      map[string]bool             // the user's delivery ids
	dead            map[string]bool             // of those, dead letters
	tasks           map[string]store.StoredTask // "queue\x00id" → task holding the user's deliveries
	held            map[string]bool             // tasks seen in flight
	triage          map[string]bool             // partners' triage groups, whose samples may quote the user
	newItems        []string                    // found, not yet saved to the work list
}

const scanPage = 500

func (x *Eraser) newJob(e *store.Erasure, sub event.Subject, dry bool) *job {
	j := &job{
		x: x, e: e, sub: sub, dry: dry,
		lim:   rate.NewLimiter(rate.Limit(x.cfg.Rate), max(x.cfg.Rate, scanPage)),
		match: newNeedles(), personal: newNeedles(),
		deliveries: map[string]bool{}, dead: map[string]bool{}, triage: map[string]bool{},
		tasks: map[string]store.StoredTask{}, held: map[string]bool{},
	}
	// needles look for each form in any case: a device id is found as
	// an IDFA (upper case) or a GAID (lower case).
	j.match.add(sub.Value)
	j.personal.add(sub.Value)
	return j
}

func (j *job) newToken() []byte {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return b
}

// hold takes or renews the erasure's lease.
func (j *job) hold(ctx context.Context) error {
	if j.dry {
		return nil
	}
	ok, err := j.x.store.TakeErasure(ctx, j.e.ID, j.token, time.Minute)
	if err != nil {
		return err
	}
	if !ok {
		return ErrErasureBusy
	}
	return nil
}

// addItem adds an entry of the work list ("d:<id>" or "t:<queue>:<id>").
func (j *job) addItem(item string) {
	switch {
	case len(item) > 2 && item[:2] == "d:":
		j.deliveries[item[2:]] = true
	case len(item) > 2 && item[:2] == "t:":
		rest := item[2:]
		for i := range len(rest) {
			if rest[i] == ':' {
				t := store.StoredTask{Queue: rest[:i], ID: rest[i+1:]}
				j.tasks[t.Queue+"\x00"+t.ID] = t
				break
			}
		}
	}
}

func (j *job) foundDelivery(id string) {
	if !j.deliveries[id] {
		j.deliveries[id] = true
		j.newItems = append(j.newItems, "d:"+id)
	}
}

func (j *job) foundTask(t store.StoredTask) {
	k := t.Queue + "\x00" + t.ID
	if _, ok := j.tasks[k]; !ok {
		j.tasks[k] = store.StoredTask{Queue: t.Queue, ID: t.ID}
		j.newItems = append(j.newItems, "t:"+t.Queue+":"+t.ID)
	}
}

// mine is the test of a decoded payload: is it the user's? It learns the
// user's other identifiers from the events that are.
func (j *job) mine(pl *wire.Payload) bool {
	if !j.sub.Matches(pl.Event) && !j.deliveries[pl.Delivery] {
		return false
	}
	j.match.add(pl.Event.Identifiers()...)
	j.personal.add(pl.Event.PersonalValues()...)
	return true
}

// save writes what was found since the last save to the work list, and
// the record's progress.
func (j *job) save(ctx context.Context) error {
	j.x.progress(j.e)
	if j.dry {
		j.newItems = j.newItems[:0]
		return nil
	}
	if err := j.hold(ctx); err != nil {
		return err
	}
	if err := j.x.store.AddErasureTodo(ctx, j.e.ID, j.newItems); err != nil {
		return err
	}
	j.newItems = j.newItems[:0]
	j.count()
	return j.x.store.SaveErasure(ctx, j.e, j.x.cfg.Retention)
}

func (j *job) count() {
	j.e.Deliveries, j.e.DeadLetters = int64(len(j.deliveries)), int64(len(j.dead))
	if j.dry {
		j.e.Tasks = int64(len(j.tasks))
	}
}

// run finds the user's data and erases it.
func (j *job) run(ctx context.Context) error {
	if err := j.find(ctx); err != nil {
		return err
	}
	j.e.Phase = "erase"
	if err := j.save(ctx); err != nil {
		return err
	}
	if err := j.erase(ctx); err != nil {
		return err
	}
	return j.eraseTriage(ctx)
}

// eraseTriage removes the user's values from the samples of the
// partners' failure groups (an error or a URL path may quote them).
func (j *job) eraseTriage(ctx context.Context) error {
	for key := range j.triage {
		if _, err := j.x.store.RedactTriageGroups(ctx, key, j.personal.redactText); err != nil {
			return err
		}
	}
	return nil
}

// find scans the database twice, reading only. The first pass reads the
// tasks and dead letters, whose events tell the user's deliveries and the
// user's other identifiers; the second reads the other records, now that
// every identifier is known.
func (j *job) find(ctx context.Context) error {
	j.e.Phase, j.e.Scanned = "scan", 0
	if err := j.scan(ctx, j.scanTasks); err != nil {
		return err
	}
	j.e.Phase = "records"
	return j.scan(ctx, j.scanRecords)
}

// scan runs page over every page of hash keys, at the configured rate,
// of every node (each master of a cluster: the shards are spread over
// them).
func (j *job) scan(ctx context.Context, page func(context.Context, []string) error) error {
	return j.x.store.Nodes(ctx, func(node *store.Store) error { return j.scanNode(ctx, node, page) })
}

func (j *job) scanNode(ctx context.Context, node *store.Store, page func(context.Context, []string) error) error {
	var cursor uint64
	for {
		keys, next, err := node.ScanHashes(ctx, cursor, scanPage)
		if err != nil {
			return err
		}
		if err := j.lim.WaitN(ctx, max(min(len(keys), j.lim.Burst()), 1)); err != nil {
			return err
		}
		if err := page(ctx, keys); err != nil {
			return err
		}
		j.e.Scanned += int64(len(keys))
		if err := j.save(ctx); err != nil {
			return err
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// scanTasks finds the user's tasks and dead letters among keys.
func (j *job) scanTasks(ctx context.Context, keys []string) error {
	var tasks []store.StoredTask
	var ids []string
	for _, k := range keys {
		if q, id, ok := store.TaskOf(k, j.x.queues); ok {
			tasks = append(tasks, store.StoredTask{Queue: q, ID: id})
		} else if id, _, ok := store.RecordID(k); ok {
			ids = append(ids, id)
		}
	}
	if len(tasks) > 0 {
		if err := j.x.store.ReadTasks(ctx, tasks); err != nil {
			return err
		}
		for _, t := range tasks {
			if t.Msg == nil {
				continue
			}
			m, err := wire.DecodeAsynqMessage(t.Msg)
			if err != nil || (m.Type != wire.TypeDeliver && m.Type != wire.TypeDeliverBundle) {
				continue // not postback's: nothing of the user in it
			}
			_, chosen, err := wire.EraseTaskPayload(m.Type, m.Payload, j.mine)
			if err != nil {
				continue // a form this build cannot read: a newer worker's
			}
			if len(chosen) > 0 {
				j.foundTask(t)
				for _, id := range chosen {
					j.foundDelivery(id)
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	recs, err := j.x.store.ReadRecords(ctx, ids, false)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if len(r.Payload) == 0 {
			continue
		}
		if _, id, err := wire.ErasePayload(r.Payload, j.mine); err == nil && id != "" {
			j.foundDelivery(id)
			j.dead[id] = true
		}
	}
	return nil
}

// scanRecords finds, among keys, the records not found yet whose URLs,
// errors or responses carry one of the user's identifiers.
func (j *job) scanRecords(ctx context.Context, keys []string) error {
	var ids []string
	for _, k := range keys {
		if id, _, ok := store.RecordID(k); ok && !j.deliveries[id] {
			ids = append(ids, id)
		}
		if store.IsTriageGroups(k) {
			j.triage[k] = true
		}
	}
	if len(ids) == 0 {
		return nil
	}
	recs, err := j.x.store.ReadRecords(ctx, ids, true)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if j.recordIsMine(r) {
			j.foundDelivery(r.ID)
			if len(r.Payload) > 0 {
				j.dead[r.ID] = true
			}
		}
	}
	return nil
}

func (j *job) recordIsMine(r store.StoredRecord) bool {
	if j.match.inURL(r.URL) || j.match.inText(r.Error) {
		return true
	}
	for _, raw := range r.Attempts {
		var a store.Attempt
		if json.Unmarshal([]byte(raw), &a) != nil {
			continue
		}
		if j.match.inURL(a.URL) || j.match.inText(a.Error) || j.match.inText(a.Response) {
			return true
		}
	}
	return false
}

// erase rewrites everything found, round after round, until a round finds
// nothing left to change and nothing held by a worker: a task in flight,
// an attempt under way, or asynq's list of what its workers run, which
// keeps a finished task's payload until the worker's next heartbeat.
func (j *job) erase(ctx context.Context) error {
	for {
		busy, err := j.round(ctx)
		if err != nil {
			return err
		}
		if !busy {
			var held []string
			for k, t := range j.tasks {
				if j.held[k] {
					held = append(held, t.ID)
				}
			}
			inWorkers, err := j.x.store.TasksInWorkers(ctx, held)
			if err != nil {
				return err
			}
			if len(inWorkers) == 0 {
				return nil
			}
		}
		if err := j.save(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(j.x.cfg.Settle):
		}
	}
}

// round erases each task and record found once; busy is true when one of
// them was held or changed under it, or was rewritten (a rewrite is
// checked again by the next round).
func (j *job) round(ctx context.Context) (busy bool, err error) {
	// A delivery's own task has its id: one a bundle handed off, or a
	// replay, made after the scan.
	for id := range j.deliveries {
		for _, q := range j.x.queues {
			if _, ok := j.tasks[q+"\x00"+id]; !ok {
				j.tasks[q+"\x00"+id] = store.StoredTask{Queue: q, ID: id}
			}
		}
	}
	tasks := make([]store.StoredTask, 0, len(j.tasks))
	keys := make([]string, 0, len(j.tasks))
	for k, t := range j.tasks {
		tasks, keys = append(tasks, t), append(keys, k)
	}
	if err := j.x.store.ReadTasks(ctx, tasks); err != nil {
		return false, err
	}
	for i, t := range tasks {
		if t.Msg == nil {
			continue
		}
		if t.State == "active" {
			j.held[keys[i]], busy = true, true
			continue
		}
		m, err := wire.DecodeAsynqMessage(t.Msg)
		if err != nil {
			return false, fmt.Errorf("task %s: %w", t.ID, err)
		}
		payload, chosen, err := wire.EraseTaskPayload(m.Type, m.Payload, j.mine)
		if err != nil {
			return false, fmt.Errorf("task %s: %w", t.ID, err)
		}
		for _, id := range chosen {
			j.foundDelivery(id)
		}
		errMsg := j.personal.redactText(m.ErrorMsg)
		if string(payload) == string(m.Payload) && errMsg == m.ErrorMsg {
			continue
		}
		msg, err := wire.RewriteAsynqMessage(t.Msg, payload, errMsg)
		if err != nil {
			return false, fmt.Errorf("task %s: %w", t.ID, err)
		}
		switch v, err := j.x.store.EraseTask(ctx, t, msg); {
		case err != nil:
			return false, err
		case v == store.EraseDone:
			j.e.Tasks++
			busy = true
		case v == store.EraseActive:
			j.held[keys[i]], busy = true, true
		case v == store.EraseChanged:
			busy = true
		}
	}
	ids := make([]string, 0, len(j.deliveries))
	for id := range j.deliveries {
		ids = append(ids, id)
	}
	recs, err := j.x.store.ReadRecords(ctx, ids, true)
	if err != nil {
		return false, err
	}
	for _, r := range recs {
		if !r.Exists && len(r.Attempts) == 0 {
			continue
		}
		if len(r.Payload) > 0 {
			j.dead[r.ID] = true
		}
		w, n, err := j.redactRecord(r)
		if err != nil {
			return false, err
		}
		if n < 0 {
			continue // nothing left to change
		}
		switch v, err := j.x.store.EraseRecord(ctx, r, w); {
		case err != nil:
			return false, err
		case v == store.EraseDone:
			j.e.Attempts += int64(n)
			busy = true
		default:
			busy = true
		}
	}
	j.count()
	return busy, nil
}

// redactRecord returns record r without the user's data, and how many of
// its attempts changed; n is -1 when nothing changed at all.
func (j *job) redactRecord(r store.StoredRecord) (w store.StoredRecord, n int, err error) {
	w = store.StoredRecord{ID: r.ID, URL: j.personal.redactURL(r.URL), Error: j.personal.redactText(r.Error), Payload: r.Payload}
	changed := w.URL != r.URL || w.Error != r.Error
	if len(r.Payload) > 0 {
		p, _, err := wire.ErasePayload(r.Payload, func(*wire.Payload) bool { return true })
		if err != nil {
			return w, 0, fmt.Errorf("dead letter %s: %w", r.ID, err)
		}
		if string(p) != string(r.Payload) {
			w.Payload, changed = p, true
		}
	}
	w.Attempts = make([]string, len(r.Attempts))
	for i, raw := range r.Attempts {
		w.Attempts[i] = raw
		var a map[string]json.RawMessage
		if json.Unmarshal([]byte(raw), &a) != nil {
			continue
		}
		edited := false
		for _, f := range []string{"url", "error"} {
			var s string
			if v, ok := a[f]; !ok || json.Unmarshal(v, &s) != nil {
				continue
			}
			red := j.personal.redactText(s)
			if f == "url" {
				red = j.personal.redactURL(s)
			}
			if red != s {
				a[f], _ = json.Marshal(red)
				edited = true
			}
		}
		// A partner's answer may echo what it was sent: it goes whole.
		if _, ok := a["response"]; ok {
			delete(a, "response")
			edited = true
		}
		if edited {
			b, err := json.Marshal(a)
			if err != nil {
				return w, 0, err
			}
			w.Attempts[i] = string(b)
			n++
			changed = true
		}
	}
	if !changed {
		return w, -1, nil
	}
	return w, n, nil
}
