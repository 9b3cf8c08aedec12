package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets on a 2-core machine.
const (
	TargetE2ERatio      = 0.8  // e2e deliveries/s ≥ 0.8 × raw asynq no-op tasks/s
	TargetP99MS         = 50   // p99 enqueue → partner at half load
	TargetBytesPerDeliv = 1024 // Redis bytes per pending delivery

	TargetIdleCores      = 0.02 // this process's CPU with no traffic, in cores
	TargetIdleCommandsPS = 200  // Redis commands/s with no traffic
	TargetIdleFirstP99MS = 20   // p99 POST → partner of one event to an idle worker
)

// Result is what one run measured. Every rate is per second over the
// phase's measuring window; ratios compare with the raw asynq baseline of
// the same run.
type Result struct {
	Redis          string  `json:"redis,omitempty"`
	RedisVersion   string  `json:"redis_version"`
	DurationS      float64 `json:"duration_s"`
	Rounds         int     `json:"rounds"`
	Concurrency    int     `json:"worker_concurrency"`
	Clients        int     `json:"clients"`
	BatchSize      int     `json:"batch_size"`
	PollIntervalMS float64 `json:"poll_interval_ms"`
	PayloadBytes   int     `json:"task_payload_bytes"`

	E2EPerS   float64 `json:"e2e_deliveries_per_s"`
	E2EIntake string  `json:"e2e_intake"` // batch or single (Config.E2EIntake)
	// Lifecycle lists the partner's lifecycle rules measured with
	// (Config.Lifecycle).
	Lifecycle     []string `json:"lifecycle,omitempty"`
	AsynqNoopPerS float64  `json:"asynq_noop_tasks_per_s"`
	E2ERatio      float64  `json:"e2e_vs_asynq_noop"`
	// Dequeuers is how many asynq processors the worker ran. When more
	// than one, raw asynq is measured a second time with as many servers
	// sharing the same concurrency: the baseline with the same dequeue
	// parallelism.
	// E2ECPU and AsynqNoopCPU are the CPU time, in µs, that one delivery
	// and one raw no-op task cost over the measuring window: this whole
	// process (with --api-url, without the API) plus the Redis server.
	// On a shared machine they move less than the rates do.
	E2ECPU       CPUCost `json:"e2e_cpu_us_per_delivery"`
	AsynqNoopCPU CPUCost `json:"asynq_noop_cpu_us_per_task"`
	E2ECPURatio  float64 `json:"e2e_cpu_vs_asynq_noop,omitempty"`

	// AsynqHTTPPerS is raw asynq whose handler sends one GET to the same
	// loopback partner with net/http: what the e2e target (a ratio to the
	// no-op) leaves for everything postback does besides that request.
	AsynqHTTPPerS   float64 `json:"asynq_http_tasks_per_s,omitempty"`
	AsynqHTTPCPU    CPUCost `json:"asynq_http_cpu_us_per_task"`
	AsynqHTTPRatio  float64 `json:"asynq_http_vs_asynq_noop,omitempty"`
	E2ERatioHTTP    float64 `json:"e2e_vs_asynq_http,omitempty"`
	E2ECPURatioHTTP float64 `json:"e2e_cpu_vs_asynq_http,omitempty"`

	Dequeuers  int `json:"worker_dequeuers"`
	BundleSize int `json:"bundle_size"`
	// Tracing is set when the run traced (Config.Tracing); Spans is how
	// many spans it exported.
	Tracing                  bool    `json:"tracing,omitempty"`
	Spans                    int64   `json:"spans_exported,omitempty"`
	AsynqNoopSameDequeuersPS float64 `json:"asynq_noop_same_dequeuers_tasks_per_s,omitempty"`
	E2ERatioSameDequeuers    float64 `json:"e2e_vs_asynq_noop_same_dequeuers,omitempty"`

	EnqueuePerS       float64 `json:"enqueue_events_per_s"`
	EnqueueBatchPerS  float64 `json:"enqueue_batch_events_per_s"`
	ClientEnqueuePerS float64 `json:"client_enqueue_events_per_s"`
	AsynqEnqueuePerS  float64 `json:"asynq_enqueue_tasks_per_s"`
	EnqueueRatio      float64 `json:"enqueue_vs_asynq_enqueue"`
	EnqueueBatchRatio float64 `json:"enqueue_batch_vs_asynq_enqueue"`
	ClientRatio       float64 `json:"client_enqueue_vs_asynq_enqueue"`

	LatencyRatePerS float64 `json:"latency_rate_per_s"`
	LatencyP50MS    float64 `json:"latency_p50_ms"`
	LatencyP99MS    float64 `json:"latency_p99_ms"`
	LatencySamples  int     `json:"latency_samples"`
	LatencyLost     int     `json:"latency_not_delivered"`

	RedisBytesPerDelivery float64 `json:"redis_bytes_per_pending_delivery"`
	AsynqBytesPerTask     float64 `json:"asynq_bytes_per_pending_task"`
	BytesRatio            float64 `json:"redis_bytes_vs_asynq"`

	WorkerRSSMB float64 `json:"worker_rss_mb"`

	// Idle is what postback costs with no traffic (the worker and the
	// in-process API); AsynqIdle is raw asynq's server with its default
	// config, idle, measured just before it. Both are measured in the
	// first round only.
	Idle      IdleCost `json:"idle"`
	AsynqIdle IdleCost `json:"asynq_idle"`
	// IdleFirstP50MS and IdleFirstP99MS time one event, POST to partner,
	// sent to a worker that has gone idle, over IdleFirstSamples trials.
	IdleFirstP50MS   float64 `json:"idle_first_event_p50_ms,omitempty"`
	IdleFirstP99MS   float64 `json:"idle_first_event_p99_ms,omitempty"`
	IdleFirstSamples int     `json:"idle_first_event_samples,omitempty"`

	// Accepted and Delivered count the end-to-end phase's events; Lost
	// is what was accepted and had not reached the partner a minute after
	// the phase; Duplicates is receipts beyond the first.
	Accepted   int64 `json:"e2e_accepted"`
	Delivered  int64 `json:"e2e_delivered"`
	Lost       int64 `json:"e2e_lost"`
	Duplicates int64 `json:"e2e_duplicates"`

	// Spread holds, with more than one round, the lowest and highest
	// per-round value of each ratio, by its JSON name.
	Spread map[string][2]float64 `json:"ratio_spread,omitempty"`

	Notes []string `json:"notes,omitempty"`

	// The fixed-rate phases: RatePerS is the rate asked (Config.Rate) and
	// RateIntake how e2e-rate sent; E2ERate and AsynqRate what postback and
	// raw asynq + one GET measured at it. Lower is better for each ratio.
	RatePerS   float64      `json:"rate_asked_per_s,omitempty"`
	RateIntake string       `json:"rate_intake,omitempty"`
	E2ERate    *RateFigures `json:"e2e_rate,omitempty"`
	// E2EMasterCommands is, on a Redis Cluster, each master's part of the
	// commands of the end-to-end phase (its last round).
	E2EMasterCommands []MasterCommands `json:"e2e_master_commands,omitempty"`
	AsynqRate         *RateFigures     `json:"asynq_rate,omitempty"`
	RateP50Ratio      float64          `json:"e2e_rate_p50_vs_asynq,omitempty"`
	RateP99Ratio      float64          `json:"e2e_rate_p99_vs_asynq,omitempty"`
	RateCPURatio      float64          `json:"e2e_rate_cpu_vs_asynq,omitempty"`
}

// CPUCost is CPU time per operation, in µs. Total is 0 (and no ratio is
// given) when Redis's part could not be read.
type CPUCost struct {
	Total   float64 `json:"total"`
	Process float64 `json:"process"` // this process: Go
	Redis   float64 `json:"redis"`   // the Redis server
}

// String is the cost as the table shows it: the total and its parts.
func (c CPUCost) String() string {
	return fmt.Sprintf("%.0f (Go %.0f + Redis %.0f)", c.Total, c.Process, c.Redis)
}

// IdleCost is what a process costs with no traffic, per second of the
// measuring window.
type IdleCost struct {
	Cores        float64 `json:"cpu_cores"`       // this process
	RedisCores   float64 `json:"redis_cpu_cores"` // the Redis server
	CommandsPerS float64 `json:"redis_commands_per_s"`
}

// String is the cost as the table shows it.
func (c IdleCost) String() string {
	return fmt.Sprintf("%.3f cores (Redis %.3f), %s commands/s", c.Cores, c.RedisCores, num(c.CommandsPerS))
}

// costOf is the CPUCost of c, one operation's share of a window.
func costOf(c cpuTimes) CPUCost {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	cost := CPUCost{Process: us(c.Process)}
	if c.Redis >= 0 {
		cost.Redis = us(c.Redis)
		cost.Total = cost.Process + cost.Redis
	}
	return cost
}

// medianCost is the cost of the round whose total is the median (lower
// median): its parts add up, as separate medians would not.
func medianCost(rounds []*Result, get func(*Result) CPUCost) CPUCost {
	cs := make([]CPUCost, len(rounds))
	for i, rr := range rounds {
		cs[i] = get(rr)
	}
	slices.SortFunc(cs, func(a, b CPUCost) int { return cmp.Compare(a.Total, b.Total) })
	return cs[(len(cs)-1)/2]
}

// combine sets r's rates and ratios to the medians of the rounds' (each
// ratio is the median of the rounds' own ratios, each against the baseline
// measured next to it), with their spread, and adds up the e2e counts.
// The latency figures are the last round's.
func (r *Result) combine(rounds []*Result) {
	last := rounds[len(rounds)-1]
	r.LatencyRatePerS, r.LatencyP50MS, r.LatencyP99MS = last.LatencyRatePerS, last.LatencyP50MS, last.LatencyP99MS
	r.LatencySamples, r.LatencyLost = last.LatencySamples, last.LatencyLost
	r.E2EMasterCommands = last.E2EMasterCommands
	// Notes of every round, once each: some are made in the last round only.
	r.Notes = nil
	for _, rr := range rounds {
		for _, n := range rr.Notes {
			if !slices.Contains(r.Notes, n) {
				r.Notes = append(r.Notes, n)
			}
		}
	}
	r.Accepted, r.Delivered, r.Duplicates, r.Lost = 0, 0, 0, 0
	for _, rr := range rounds {
		r.Accepted += rr.Accepted
		r.Delivered += rr.Delivered
		r.Duplicates += rr.Duplicates
		r.Lost += rr.Lost // each round's own: one's surplus must not hide another's loss
	}
	med := func(get func(*Result) *float64) {
		v := make([]float64, len(rounds))
		for i, rr := range rounds {
			v[i] = *get(rr)
		}
		slices.Sort(v)
		*get(r) = median(v)
	}
	for _, f := range []func(*Result) *float64{
		func(x *Result) *float64 { return &x.E2EPerS },
		func(x *Result) *float64 { return &x.AsynqNoopPerS },
		func(x *Result) *float64 { return &x.AsynqNoopSameDequeuersPS },
		func(x *Result) *float64 { return &x.AsynqHTTPPerS },
		func(x *Result) *float64 { return &x.EnqueuePerS },
		func(x *Result) *float64 { return &x.EnqueueBatchPerS },
		func(x *Result) *float64 { return &x.ClientEnqueuePerS },
		func(x *Result) *float64 { return &x.AsynqEnqueuePerS },
	} {
		med(f)
	}
	r.E2ECPU = medianCost(rounds, func(x *Result) CPUCost { return x.E2ECPU })
	r.AsynqNoopCPU = medianCost(rounds, func(x *Result) CPUCost { return x.AsynqNoopCPU })
	r.AsynqHTTPCPU = medianCost(rounds, func(x *Result) CPUCost { return x.AsynqHTTPCPU })
	for name, f := range map[string]func(*Result) *float64{
		"e2e_vs_asynq_noop":                func(x *Result) *float64 { return &x.E2ERatio },
		"e2e_cpu_vs_asynq_noop":            func(x *Result) *float64 { return &x.E2ECPURatio },
		"e2e_vs_asynq_noop_same_dequeuers": func(x *Result) *float64 { return &x.E2ERatioSameDequeuers },
		"asynq_http_vs_asynq_noop":         func(x *Result) *float64 { return &x.AsynqHTTPRatio },
		"e2e_vs_asynq_http":                func(x *Result) *float64 { return &x.E2ERatioHTTP },
		"e2e_cpu_vs_asynq_http":            func(x *Result) *float64 { return &x.E2ECPURatioHTTP },
		"enqueue_vs_asynq_enqueue":         func(x *Result) *float64 { return &x.EnqueueRatio },
		"enqueue_batch_vs_asynq_enqueue":   func(x *Result) *float64 { return &x.EnqueueBatchRatio },
		"client_enqueue_vs_asynq_enqueue":  func(x *Result) *float64 { return &x.ClientRatio },
	} {
		med(f)
		if len(rounds) > 1 && *f(r) > 0 {
			lo, hi := *f(rounds[0]), *f(rounds[0])
			for _, rr := range rounds[1:] {
				lo, hi = min(lo, *f(rr)), max(hi, *f(rr))
			}
			if r.Spread == nil {
				r.Spread = make(map[string][2]float64)
			}
			r.Spread[name] = [2]float64{lo, hi}
		}
	}
	r.BytesRatio = ratio(r.RedisBytesPerDelivery, r.AsynqBytesPerTask)
	r.combineRate(rounds)
}

// median of sorted v: the middle value, or the mean of the two middle ones.
func median(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (r *Result) ratios() {
	r.E2ERatio = ratio(r.E2EPerS, r.AsynqNoopPerS)
	r.E2ERatioSameDequeuers = ratio(r.E2EPerS, r.AsynqNoopSameDequeuersPS)
	r.E2ECPURatio = ratio(r.E2ECPU.Total, r.AsynqNoopCPU.Total)
	r.AsynqHTTPRatio = ratio(r.AsynqHTTPPerS, r.AsynqNoopPerS)
	r.E2ERatioHTTP = ratio(r.E2EPerS, r.AsynqHTTPPerS)
	r.E2ECPURatioHTTP = ratio(r.E2ECPU.Total, r.AsynqHTTPCPU.Total)
	r.EnqueueRatio = ratio(r.EnqueuePerS, r.AsynqEnqueuePerS)
	r.EnqueueBatchRatio = ratio(r.EnqueueBatchPerS, r.AsynqEnqueuePerS)
	r.ClientRatio = ratio(r.ClientEnqueuePerS, r.AsynqEnqueuePerS)
	r.BytesRatio = ratio(r.RedisBytesPerDelivery, r.AsynqBytesPerTask)
	r.Lost = max(0, r.Accepted-r.Delivered)
	r.rateRatios()
}

// WriteJSON writes r as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as a Markdown table (readable as plain text too).
func (r *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	rounds := ""
	if r.Rounds > 1 {
		rounds = fmt.Sprintf(" · %d rounds, medians (lowest–highest ratio)", r.Rounds)
	}
	fmt.Fprintf(&b, "Redis %s%s · %gs a phase%s · worker concurrency %d in %d asynq processor(s) · %d clients · batches of %d (%s intake end to end), deliveries bundled by up to %d · poll %gms · task payload %d B\n\n",
		r.RedisVersion, paren(r.Redis), r.DurationS, rounds, r.Concurrency, r.Dequeuers, r.Clients, r.BatchSize, r.E2EIntake, r.BundleSize, r.PollIntervalMS, r.PayloadBytes)
	if len(r.Lifecycle) > 0 {
		fmt.Fprintf(&b, "The bench partner has the lifecycle rules %s: each delivery pays for them.\n\n", strings.Join(r.Lifecycle, ", "))
	}
	if r.Tracing {
		fmt.Fprintf(&b, "Tracing on: %d spans through the OpenTelemetry SDK's batch processor (exporter drops them)\n\n", r.Spans)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| metric\t| postback\t| baseline (raw asynq, same run)\t| ratio\t| target\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|")
	row := func(name, v, base, ratio, target string) {
		fmt.Fprintf(tw, "| %s\t| %s\t| %s\t| %s\t| %s\t|\n", name, v, base, ratio, target)
	}
	intake := fmt.Sprintf("intake %d/batch", r.BatchSize)
	if r.E2EIntake == IntakeSingle {
		intake = "intake 1/POST"
	}
	// A row whose phases did not run (--phase) is left out rather than
	// shown as zero against its target.
	if r.E2EPerS > 0 || r.AsynqNoopPerS > 0 {
		row("e2e_deliveries_per_s ("+intake+")", num(r.E2EPerS), num(r.AsynqNoopPerS)+" no-op tasks/s", r.xs("e2e_vs_asynq_noop", r.E2ERatio), check(r.E2ERatio >= TargetE2ERatio, "≥ 0.80×"))
	}
	if r.E2ECPU.Total > 0 || r.AsynqNoopCPU.Total > 0 {
		row("e2e_cpu_us_per_delivery (lower is better)", r.E2ECPU.String(), r.AsynqNoopCPU.String()+" a no-op task", r.xs("e2e_cpu_vs_asynq_noop", r.E2ECPURatio), "")
	}
	if r.AsynqHTTPPerS > 0 {
		row("asynq_http_tasks_per_s (raw asynq + one GET, no postback)", num(r.AsynqHTTPPerS), num(r.AsynqNoopPerS)+" no-op tasks/s", r.xs("asynq_http_vs_asynq_noop", r.AsynqHTTPRatio), "")
		row("e2e_deliveries_per_s vs raw asynq + one GET", num(r.E2EPerS), num(r.AsynqHTTPPerS)+" tasks/s", r.xs("e2e_vs_asynq_http", r.E2ERatioHTTP), "")
	}
	if r.E2ECPU.Total > 0 && r.AsynqHTTPCPU.Total > 0 {
		row("e2e_cpu_us_per_delivery vs raw asynq + one GET", fmt.Sprintf("%.0f", r.E2ECPU.Total), r.AsynqHTTPCPU.String(), r.xs("e2e_cpu_vs_asynq_http", r.E2ECPURatioHTTP), "")
	}
	if r.AsynqNoopSameDequeuersPS > 0 {
		row(fmt.Sprintf("e2e_deliveries_per_s vs %d asynq servers", r.Dequeuers), num(r.E2EPerS), num(r.AsynqNoopSameDequeuersPS)+" no-op tasks/s", r.xs("e2e_vs_asynq_noop_same_dequeuers", r.E2ERatioSameDequeuers), "")
	}
	if r.EnqueuePerS > 0 || r.AsynqEnqueuePerS > 0 {
		row("enqueue_events_per_s (HTTP, single)", num(r.EnqueuePerS), num(r.AsynqEnqueuePerS)+" Client.Enqueue/s", r.xs("enqueue_vs_asynq_enqueue", r.EnqueueRatio), "")
	}
	if r.EnqueueBatchPerS > 0 {
		row(fmt.Sprintf("enqueue_batch_events_per_s (HTTP, %d/batch)", r.BatchSize), num(r.EnqueueBatchPerS), num(r.AsynqEnqueuePerS)+" Client.Enqueue/s", r.xs("enqueue_batch_vs_asynq_enqueue", r.EnqueueBatchRatio), "")
	}
	if r.ClientEnqueuePerS > 0 {
		row("client_enqueue_events_per_s (Go client)", num(r.ClientEnqueuePerS), num(r.AsynqEnqueuePerS)+" Client.Enqueue/s", r.xs("client_enqueue_vs_asynq_enqueue", r.ClientRatio), "")
	}
	if r.LatencyRatePerS > 0 {
		row(fmt.Sprintf("latency_p50_ms (at %s/s)", num(r.LatencyRatePerS)), fmt.Sprintf("%.1f", r.LatencyP50MS), "", "", "")
		row(fmt.Sprintf("latency_p99_ms (at %s/s)", num(r.LatencyRatePerS)), fmt.Sprintf("%.1f", r.LatencyP99MS), "", "", check(r.LatencyP99MS <= TargetP99MS, "≤ 50 ms"))
	}
	if len(r.E2EMasterCommands) > 0 {
		row("e2e_commands_per_master (Redis Cluster)", masterSharesText(r.E2EMasterCommands), "", "", "")
	}
	r.rateRows(row)
	if r.RedisBytesPerDelivery > 0 {
		row("redis_bytes_per_pending_delivery", fmt.Sprintf("%.0f", r.RedisBytesPerDelivery), fmt.Sprintf("%.0f B/task", r.AsynqBytesPerTask), x(r.BytesRatio), check(r.RedisBytesPerDelivery <= TargetBytesPerDeliv, "≤ 1024 B"))
	}
	if r.Idle.CommandsPerS > 0 || r.AsynqIdle.CommandsPerS > 0 {
		row("idle: cpu_cores, redis_commands_per_s (no traffic, whole bench process)", r.Idle.String(), r.AsynqIdle.String()+", default config",
			x(ratio(r.Idle.CommandsPerS, r.AsynqIdle.CommandsPerS))+" commands",
			check(r.Idle.Cores <= TargetIdleCores && r.Idle.CommandsPerS <= TargetIdleCommandsPS, "≤ 0.02 cores, ≤ 200/s"))
	}
	if r.IdleFirstSamples > 0 {
		row(fmt.Sprintf("idle: first event, POST to partner, p50 / p99 ms (%d trials)", r.IdleFirstSamples), fmt.Sprintf("%.1f / %.1f", r.IdleFirstP50MS, r.IdleFirstP99MS), "", "", check(r.IdleFirstP99MS <= TargetIdleFirstP99MS, "p99 ≤ 20 ms"))
	}
	row("worker_rss_mb (whole bench process)", fmt.Sprintf("%.1f", r.WorkerRSSMB), "", "", "")
	if r.E2EPerS > 0 {
		row("e2e accepted / delivered / lost / dup", fmt.Sprintf("%d / %d / %d / %d", r.Accepted, r.Delivered, r.Lost, r.Duplicates), "", "", check(r.Lost == 0, "0 lost"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func num(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", f)
	}
}

// xs is ratio f of the JSON-named figure, with its spread over the rounds.
func (r *Result) xs(name string, f float64) string {
	s := x(f)
	if sp, ok := r.Spread[name]; ok && s != "" {
		s += fmt.Sprintf(" (%.2f–%.2f)", sp[0], sp[1])
	}
	return s
}

func x(f float64) string {
	if f == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f×", f)
}

func check(ok bool, target string) string {
	if ok {
		return target + " ✓"
	}
	return target + " ✗"
}
