package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
)

// IntakeClient is a fixed-rate intake (Config.RateIntake): each event
// through intake.Client.Enqueue, in-process, as the raw asynq baseline
// calls asynq's Client.Enqueue.
const IntakeClient = "client"

// DefaultRate is the fixed-rate phases' default, in events a second.
const DefaultRate = 100

// maxRate bounds Config.Rate: every event of a fixed-rate phase has a
// goroutine of its own, and a stalled pipeline keeps them all.
const maxRate = 50_000

// runsRate reports whether a fixed-rate phase is among the phases to run.
func (c Config) runsRate() bool {
	return len(c.Phases) == 0 || slices.Contains(c.Phases, "asynq-rate") || slices.Contains(c.Phases, "e2e-rate")
}

// RateFigures is what one side of the fixed-rate phases measured: postback
// (e2e-rate) or raw asynq (asynq-rate). Latency is from each event's
// planned start to its first arrival at the partner, over the events
// planned in the measuring window; the rate and the CPU are the arrivals
// in that window and the CPU spent in it.
type RateFigures struct {
	AchievedPerS float64 `json:"achieved_per_s"`
	P50MS        float64 `json:"latency_p50_ms"`
	P99MS        float64 `json:"latency_p99_ms"`
	MaxMS        float64 `json:"latency_max_ms"`
	// CPU is per delivery (per task for raw asynq).
	CPU CPUCost `json:"cpu_us_per_delivery"`
	// Sent counts the events accepted (warm-up included); Refused those
	// whose enqueue failed; Delivered the accepted that reached the
	// partner; Lost the rest; Samples the latencies measured.
	Sent      int64 `json:"sent"`
	Refused   int64 `json:"refused"`
	Delivered int64 `json:"delivered"`
	Lost      int64 `json:"lost"`
	Samples   int   `json:"latency_samples"`
}

// asynqRate is the fixed-rate baseline: raw asynq Client.Enqueue at
// Config.Rate, and a server with the worker's concurrency whose handler
// sends the GET a delivery of the bench partner sends, with net/http.
func (r *run) asynqRate(ctx context.Context, res *Result) error {
	tr := &http.Transport{MaxIdleConnsPerHost: r.cfg.Concurrency, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	srv := asynq.NewServerFromRedisClient(r.cfg.Redis, asynq.Config{
		Concurrency:       r.cfg.Concurrency,
		Queues:            map[string]int{rawQueue: 1},
		TaskCheckInterval: r.cfg.PollInterval,
		LogLevel:          asynq.ErrorLevel,
		Logger:            asynqLogger{r.cfg.Logger},
	})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		// What the bench partner's template renders, built without one.
		u := "http://" + r.partner.addr + "/pb?e=" + id + "&click_id=ck-" + id +
			"&goal=2&sum=1.99&cur=USD&ts=" + ts + "&idfa=6D92078A-8246-4BA4-AE5B-76104861E7DC&dlv=" + id
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("bench partner answered %s", resp.Status)
		}
		return nil
	})); err != nil {
		return err
	}
	defer srv.Shutdown()
	aq := asynq.NewClientFromRedisClient(r.cfg.Redis)
	f, err := r.atRate(ctx, res, "asynq-rate", 5_000_000_000, func(ctx context.Context, id string) error {
		_, err := aq.EnqueueContext(ctx, asynq.NewTask(rawType, r.payload, asynq.Queue(rawQueue)), asynq.TaskID(id))
		return err
	})
	res.AsynqRate = f
	return err
}

// e2eRate sends events through postback at Config.Rate, one a request (or
// one a Client.Enqueue, Config.RateIntake), to a worker as the end-to-end
// phase runs it.
func (r *run) e2eRate(ctx context.Context, res *Result) error {
	res.RateIntake = r.cfg.RateIntake
	ev, err := event.DecodeEvent(eventJSON(nil, "template"), time.Now())
	if err != nil {
		return err
	}
	w, err := delivery.NewWorker(delivery.WorkerConfig{
		Redis: r.cfg.Redis, Config: r.live, Concurrency: r.cfg.Concurrency, Dequeuers: r.cfg.Dequeuers, Logger: r.cfg.Logger,
		PollInterval: r.cfg.PollInterval, ShutdownTimeout: 10 * time.Second, Tracer: r.tracer,
	})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Shutdown()
	f, err := r.atRate(ctx, res, "e2e-rate", 4_000_000_000, func(ctx context.Context, id string) error {
		if r.cfg.RateIntake == IntakeClient {
			e := *ev
			e.ID, e.ClickID = id, "ck-"+id
			_, err := r.client.Enqueue(ctx, &e)
			return err
		}
		_, err := r.post(ctx, id)
		return err
	})
	if f != nil && r.cfg.APIURL != "" && r.cfg.RateIntake == IntakeSingle {
		f.CPU = CPUCost{}
		res.Notes = append(res.Notes, "e2e-rate CPU per delivery not measured: the API runs in another process (--api-url)")
	}
	res.E2ERate = f
	return err
}

// atRate sends events base, base+1, … with send at Config.Rate for
// warm-up plus Duration. It is an open loop: event i starts in a goroutine
// of its own at its planned time, start + i/Rate, however long the earlier
// ones take, and its latency counts from that planned time. A closed loop
// (a producer that waits for its answer before sending the next event)
// would send less while the pipeline is slow, and leave out of the
// figures the very waits a stall causes (coordinated omission).
func (r *run) atRate(ctx context.Context, res *Result, phase string, base int64, send func(context.Context, string) error) (*RateFigures, error) {
	rate := r.cfg.Rate
	res.RatePerS = rate
	warm, total := r.warm(), r.warm()+r.cfg.Duration
	n := int64(rate * total.Seconds())
	skip := int64(rate * warm.Seconds()) // warm-up: sent and checked, not measured
	start := time.Now()
	planned := func(i int64) time.Time { return start.Add(time.Duration(float64(i) * float64(time.Second) / rate)) }
	w0, w1 := start.Add(warm), start.Add(total)

	var cpu [2]cpuTimes
	var cpuRead atomic.Int32
	var wg sync.WaitGroup
	wg.Go(func() {
		for k, at := range []time.Time{w0, w1} {
			if !sleep(ctx, time.Until(at)) {
				return
			}
			cpu[k] = r.cpuNow()
			cpuRead.Add(1)
		}
	})
	accepted := make([]bool, n) // each goroutine writes its own element
	var failed atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	for i := range n {
		if d := time.Until(planned(i)); d > 0 && !sleep(ctx, d) {
			break
		}
		wg.Go(func() {
			if err := send(ctx, r.eventID(base+i)); err != nil {
				failed.Add(1)
				errMu.Lock()
				firstErr = cmp.Or(firstErr, err)
				errMu.Unlock()
				return
			}
			accepted[i] = true
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f := &RateFigures{Refused: failed.Load()}
	for _, ok := range accepted {
		if ok {
			f.Sent++
		}
	}
	if f.Sent == 0 {
		return nil, fmt.Errorf("nothing was accepted: %v", firstErr)
	}
	if f.Refused > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %d of %d events refused, the first with: %v", phase, f.Refused, n, firstErr))
	}
	waitFor(ctx, 30*time.Second, func() bool { return r.partner.unique() >= f.Sent })

	lat := make([]time.Duration, 0, n-skip)
	for i := range n {
		if !accepted[i] {
			continue
		}
		t1, ok := r.partner.firstReceipt(r.eventID(base + i))
		if !ok {
			continue
		}
		f.Delivered++
		if i >= skip {
			lat = append(lat, t1.Sub(planned(i)))
		}
	}
	f.Lost = f.Sent - f.Delivered
	f.Samples = len(lat)
	if len(lat) == 0 {
		return f, errors.New("no event of the measuring window reached the partner")
	}
	slices.Sort(lat)
	f.P50MS, f.P99MS, f.MaxMS = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1])
	arrived := r.partner.arrivedBetween(w0, w1)
	f.AchievedPerS = float64(arrived) / w1.Sub(w0).Seconds()
	if cpuRead.Load() == 2 && arrived > 0 {
		per := cpuTimes{Process: (cpu[1].Process - cpu[0].Process) / time.Duration(arrived), Redis: -1}
		if cpu[0].Redis >= 0 && cpu[1].Redis >= 0 {
			per.Redis = (cpu[1].Redis - cpu[0].Redis) / time.Duration(arrived)
		}
		f.CPU = costOf(per)
	}
	return f, nil
}

// arrivedBetween counts the events whose first arrival is in [from, to).
func (p *partner) arrivedBetween(from, to time.Time) int64 {
	lo, hi := from.UnixNano(), to.UnixNano()
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, ns := range p.first {
		if ns >= lo && ns < hi {
			n++
		}
	}
	return n
}

// rateRatios compares the fixed-rate phases (lower is better for each).
func (r *Result) rateRatios() {
	if r.E2ERate == nil || r.AsynqRate == nil {
		return
	}
	r.RateP50Ratio = ratio(r.E2ERate.P50MS, r.AsynqRate.P50MS)
	r.RateP99Ratio = ratio(r.E2ERate.P99MS, r.AsynqRate.P99MS)
	r.RateCPURatio = ratio(r.E2ERate.CPU.Total, r.AsynqRate.CPU.Total)
}

// combineRate sets the fixed-rate figures to the rounds' medians (the
// latency maximum to the highest of them, and the counts to their sums),
// and each ratio to the median of the rounds' own, with its spread.
func (r *Result) combineRate(rounds []*Result) {
	r.E2ERate = combineFigures(rounds, func(x *Result) *RateFigures { return x.E2ERate })
	r.AsynqRate = combineFigures(rounds, func(x *Result) *RateFigures { return x.AsynqRate })
	for name, f := range map[string]func(*Result) *float64{
		"e2e_rate_p50_vs_asynq": func(x *Result) *float64 { return &x.RateP50Ratio },
		"e2e_rate_p99_vs_asynq": func(x *Result) *float64 { return &x.RateP99Ratio },
		"e2e_rate_cpu_vs_asynq": func(x *Result) *float64 { return &x.RateCPURatio },
	} {
		v := make([]float64, len(rounds))
		for i, rr := range rounds {
			v[i] = *f(rr)
		}
		slices.Sort(v)
		*f(r) = median(v)
		if len(rounds) > 1 && *f(r) > 0 {
			if r.Spread == nil {
				r.Spread = make(map[string][2]float64)
			}
			r.Spread[name] = [2]float64{v[0], v[len(v)-1]}
		}
	}
}

func combineFigures(rounds []*Result, get func(*Result) *RateFigures) *RateFigures {
	var fs []*RateFigures
	for _, rr := range rounds {
		if f := get(rr); f != nil {
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 {
		return nil
	}
	out := &RateFigures{}
	med := func(get func(*RateFigures) float64) float64 {
		v := make([]float64, len(fs))
		for i, f := range fs {
			v[i] = get(f)
		}
		slices.Sort(v)
		return median(v)
	}
	out.AchievedPerS = med(func(f *RateFigures) float64 { return f.AchievedPerS })
	out.P50MS = med(func(f *RateFigures) float64 { return f.P50MS })
	out.P99MS = med(func(f *RateFigures) float64 { return f.P99MS })
	cs := make([]CPUCost, len(fs))
	for i, f := range fs {
		out.MaxMS = max(out.MaxMS, f.MaxMS)
		out.Sent += f.Sent
		out.Refused += f.Refused
		out.Delivered += f.Delivered
		out.Lost += f.Lost
		out.Samples += f.Samples
		cs[i] = f.CPU
	}
	// The round whose total is the median: its parts add up.
	slices.SortFunc(cs, func(a, b CPUCost) int { return cmp.Compare(a.Total, b.Total) })
	out.CPU = cs[(len(cs)-1)/2]
	return out
}

// rateRows adds the fixed-rate phases' rows to the table; a side whose
// phase did not run (--phase) has empty cells.
func (r *Result) rateRows(row func(name, v, base, ratio, target string)) {
	if r.E2ERate == nil && r.AsynqRate == nil {
		return
	}
	e, a := r.E2ERate.cells(), r.AsynqRate.cells()
	at := "at " + num(r.RatePerS) + "/s"
	switch {
	case r.E2ERate == nil:
	case r.RateIntake == IntakeClient:
		at += ", intake Go client"
	default:
		at += ", intake 1/POST"
	}
	if r.AsynqRate != nil {
		a.p50 += " raw asynq + one GET"
		a.cpu += " a task"
	}
	row("rate_latency_p50_ms ("+at+")", e.p50, a.p50, r.xs("e2e_rate_p50_vs_asynq", r.RateP50Ratio), "")
	row("rate_latency_p99_ms ("+at+")", e.p99, a.p99, r.xs("e2e_rate_p99_vs_asynq", r.RateP99Ratio), "")
	row("rate_latency_max_ms (highest round)", e.max, a.max, "", "")
	row("rate_achieved_per_s", e.achieved, a.achieved, "", "")
	row("rate_cpu_us_per_delivery (lower is better)", e.cpu, a.cpu, r.xs("e2e_rate_cpu_vs_asynq", r.RateCPURatio), "")
	row("rate sent / refused / delivered / lost", e.counts, a.counts, "", check(e.lost+a.lost == 0, "0 lost, 0 refused"))
}

// rateCells is one side's column of the fixed-rate rows.
type rateCells struct {
	p50, p99, max, achieved, cpu, counts string
	lost                                 int64 // lost or refused
}

// cells formats f; a nil f (its phase did not run) gives empty cells.
func (f *RateFigures) cells() rateCells {
	if f == nil {
		return rateCells{}
	}
	return rateCells{
		p50: fmt.Sprintf("%.1f", f.P50MS), p99: fmt.Sprintf("%.1f", f.P99MS), max: fmt.Sprintf("%.1f", f.MaxMS),
		achieved: num(f.AchievedPerS), cpu: f.CPU.String(),
		counts: fmt.Sprintf("%d / %d / %d / %d", f.Sent, f.Refused, f.Delivered, f.Lost), lost: f.Lost + f.Refused,
	}
}
