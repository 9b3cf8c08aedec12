package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/delivery"
	"github.com/postbackhq/postback/internal/event"
	"github.com/postbackhq/postback/internal/netguard"
	"github.com/postbackhq/postback/internal/ops"
	"github.com/postbackhq/postback/internal/version"
	"github.com/postbackhq/postback/internal/wire"
	"github.com/postbackhq/postback/retry"
	"github.com/postbackhq/postback/templates"
)

// partnersCommand is `postback partners list|validate|render|test`: what
// the config says about each partner, and what it would send. None of them
// needs Redis.
func partnersCommand() *cli.Command {
	cmd := &cli.Command{
		Name:  "partners",
		Usage: "list, validate, render or test the partners of the config",
		// Without a known subcommand: help, or a usage error (exit 2).
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError("partners: unknown command %q (want list, validate, render, test, pause, resume, presets or add)", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list the partners and their delivery settings",
				Flags:  []cli.Flag{outputFlag()},
				Action: partnersList,
			},
			{
				Name:   "validate",
				Usage:  "check the whole config; print every problem (exit 1 if any) and risky settings",
				Action: partnersValidate,
			},
			{
				Name:  "render",
				Usage: "print the exact request a partner would receive for an event; nothing is sent",
				Flags: []cli.Flag{
					partnerFlag(), eventFlag(), outputFlag(),
					&cli.BoolFlag{Name: "show-secrets", Usage: "print credential-like header values (Authorization, *token*, *secret*…) instead of masking them"},
				},
				Action: partnersRender,
			},
			{
				Name:  "test",
				Usage: "send one real postback now (same sender and SSRF guard as the workers; queues untouched)",
				Flags: []cli.Flag{
					partnerFlag(), eventFlag(), outputFlag(),
					&cli.BoolFlag{Name: "show-secrets", Usage: "print credential-like header values instead of masking them"},
				},
				Action: partnersTest,
			},
			partnersPauseCommand(),
			partnersResumeCommand(),
			partnersPresetsCommand(), partnersAddCommand(),
		},
	}
	for _, sub := range append(cmd.Subcommands, cmd) {
		sub.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
			return &exitError{code: 2, err: err}
		}
	}
	return cmd
}

// partnerFlag and eventFlag are required; prepare checks them, so that a
// missing one is a usage error (exit 2).
func partnerFlag() cli.Flag {
	return &cli.StringFlag{Name: "partner", Aliases: []string{"p"}, Usage: "partner id (required)"}
}

func eventFlag() cli.Flag {
	return &cli.StringFlag{Name: "event", Aliases: []string{"e"}, Usage: "event JSON file, or - for stdin (required)"}
}

// ---- list ----

// partnerRow is one partner in `partners list -o json`.
type partnerRow struct {
	ID          string   `json:"id"`
	Enabled     bool     `json:"enabled"`
	Events      []string `json:"events"` // empty: every event
	Match       string   `json:"match"`
	When        string   `json:"when,omitempty"`
	Require     []string `json:"require,omitempty"`
	Method      string   `json:"method"`
	Host        string   `json:"host"`
	Signing     bool     `json:"signing"`
	RateLimit   string   `json:"rate_limit"` // "" when unlimited
	Concurrency int      `json:"concurrency"`
	Timeout     string   `json:"timeout"`
	MaxAttempts int      `json:"max_attempts"`
	MaxAge      string   `json:"max_age"`
	Consent     bool     `json:"require_consent"`
	// Paused is the pause in force, nil when none; unknown (and left
	// out) when Redis cannot be reached.
	Paused *ops.Pause `json:"paused"`

	retry string // "10 attempts / 24h", for the table
}

func partnersList(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return err
	}
	pauses, known := readPauses(c)
	if !known {
		fmt.Fprintf(c.App.ErrWriter, "postback: pauses not shown: cannot reach Redis at %s\n", redactURL(c.String("redis-url")))
	}
	rows := make([]partnerRow, 0, len(cfg.Partners))
	for _, p := range cfg.Partners {
		r := partnerRow{
			ID: p.ID, Enabled: p.Enabled, Events: p.Events, Match: p.Match.String(),
			Method: p.Method, Host: templateHost(p.URL), Signing: p.Signer != nil,
			RateLimit: rateString(p.RateLimit), Concurrency: p.Concurrency,
			Timeout: config.ShortDuration(p.Timeout), MaxAttempts: p.Retry.MaxAttempts, MaxAge: config.ShortDuration(p.Retry.MaxAge),
			Consent: p.RequireConsent,
		}
		r.retry = fmt.Sprintf("%d attempts / %s", r.MaxAttempts, r.MaxAge)
		if pause, ok := pauses[p.ID]; ok {
			r.Paused = &pause
		}
		if r.Events == nil {
			r.Events = []string{}
		}
		if p.When != nil {
			r.When = p.When.String()
		}
		for _, req := range p.Require {
			r.Require = append(r.Require, req.String())
		}
		rows = append(rows, r)
	}
	if format == "json" {
		return writeJSON(c.App.Writer, rows)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENABLED\tEVENTS\tMATCH\tMETHOD\tHOST\tSIGNING\tRATE LIMIT\tCONCURRENCY\tRETRY\tPAUSED")
	for _, r := range rows {
		events := strings.Join(r.Events, ",")
		if events == "" {
			events = "(all)"
		}
		match := r.Match
		if r.When != "" {
			match += " + when"
		}
		paused := pauseText(r.Paused)
		if !known {
			paused = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.ID, yesNo(r.Enabled), events, match, r.Method, r.Host, yesNo(r.Signing),
			cmpDash(r.RateLimit), cmpDash(capString(r.Concurrency)), r.retry, paused)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cmpDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func capString(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func rateString(r config.RateLimit) string {
	if r.Requests == 0 {
		return ""
	}
	var per string
	switch r.Per {
	case time.Second:
		per = "s"
	case time.Minute:
		per = "m"
	case time.Hour:
		per = "h"
	default:
		per = config.ShortDuration(r.Per)
	}
	return fmt.Sprintf("%d/%s", r.Requests, per)
}

// templateHost is the host of a URL template (macros are not allowed in it,
// so the source names it).
func templateHost(t *templates.Template) string {
	if t == nil {
		return ""
	}
	u, err := url.Parse(t.Source())
	if err != nil || u.Host == "" {
		// A macro in the path can make the whole template unparseable as
		// a URL; the host is still between "//" and the next "/", "?" or "#".
		_, rest, ok := strings.Cut(t.Source(), "//")
		if !ok {
			return "?"
		}
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		return rest
	}
	return u.Host
}

// ---- validate ----

func partnersValidate(c *cli.Context) error {
	path := c.String("config")
	cfg, warnings, err := config.Check(path)
	w := c.App.Writer
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Fprintln(w, p)
		}
		for _, p := range warnings {
			fmt.Fprintln(w, p)
		}
		n := len(cerr.Problems)
		return fmt.Errorf("%s: %d problem%s", path, n, plural(n))
	}
	if err != nil {
		return err
	}
	for _, p := range warnings {
		fmt.Fprintln(w, p)
	}
	n := len(cfg.Partners)
	msg := fmt.Sprintf("%s: %d partner%s OK", path, n, plural(n))
	if len(warnings) > 0 {
		msg += fmt.Sprintf(" (%d warning%s)", len(warnings), plural(len(warnings)))
	}
	fmt.Fprintln(w, msg)
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ---- render and test ----

// rendered is one partner's request for one event, and what the workers
// would do with it.
type rendered struct {
	Partner    string `json:"partner"`
	DeliveryID string `json:"delivery_id"`
	// Send is whether a worker would send it; Reason says why not.
	Send   bool     `json:"send"`
	Reason string   `json:"reason,omitempty"`
	Notes  []string `json:"notes,omitempty"`

	Request renderedRequest `json:"request"`

	req *config.Request
}

type renderedRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	// Headers by canonical name; masked values say so. Repeated headers
	// are joined with ", ".
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body,omitempty"`
	// names is Headers' keys, sorted, for the text form.
	names []string
}

// prepare loads the config, the partner and the event, and renders the
// request as a worker would for the first attempt.
func prepare(c *cli.Context) (*config.Config, *config.Partner, *rendered, error) {
	if c.String("partner") == "" || c.String("event") == "" {
		return nil, nil, nil, usageError("partners %s: --partner and --event are required", c.Command.Name)
	}
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return nil, nil, nil, err
	}
	id := c.String("partner")
	p := cfg.Partner(id)
	if p == nil {
		ids := make([]string, len(cfg.Partners))
		for i, p := range cfg.Partners {
			ids[i] = p.ID
		}
		return nil, nil, nil, fmt.Errorf("unknown partner %q (partners: %s)", id, strings.Join(ids, ", "))
	}
	ev, warnings, err := readEvent(c, c.String("event"), cfg.API.Strict)
	if err != nil {
		return nil, nil, nil, err
	}
	r := &rendered{Partner: p.ID, DeliveryID: wire.DeliveryID(ev.ID, p.ID)}
	for _, w := range warnings {
		r.Notes = append(r.Notes, fmt.Sprintf("%s: %s (as intake would)", w.Field, w.Message))
	}
	r.Send, r.Reason = wouldSend(p, ev, r.DeliveryID)
	if r.Send {
		r.Notes = append(r.Notes, lifecycleNotes(p, ev, r.DeliveryID)...)
	}
	if p.RequireConsent && !ev.Consent.IsGranted() {
		r.Notes = append(r.Notes, "no consent in the event: device ids, ip and email render empty for this partner")
	}
	req, err := p.Render(ev, r.DeliveryID, 1)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("partner %q: render: %w (a worker would dead-letter this delivery with reason render)", p.ID, err)
	}
	r.req = req
	return cfg, p, r, nil
}

// readEvent decodes an event file (or stdin for "-") with the API's rules,
// and normalises it as intake does (strict: api.strict), so that what is
// rendered is what a partner would receive.
func readEvent(c *cli.Context, name string, strict bool) (*event.Event, []event.Warning, error) {
	var data []byte
	var err error
	if name == "-" {
		in := c.App.Reader
		if in == nil {
			in = os.Stdin
		}
		data, err = io.ReadAll(in)
		name = "stdin"
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read event: %w", err)
	}
	ev, err := event.DecodeEvent(data, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("event %s: %w", name, err)
	}
	warnings, err := ev.Normalize(strict)
	if err != nil {
		return nil, nil, fmt.Errorf("event %s: %w (api.strict)", name, err)
	}
	return ev, warnings, nil
}

// wouldSend applies routing (enabled, events, match, when) and `require`
// as the API and the workers do, and says why a delivery would not be sent.
func wouldSend(p *config.Partner, ev *event.Event, deliveryID string) (bool, string) {
	if why := p.NotRouted(ev); why != "" {
		return false, "not routed: " + why
	}
	if r := config.Routes([]*config.Partner{p}, ev)[0]; r.Skip != "" {
		return false, "skipped: " + r.Skip
	}
	var v templates.Values
	p.Values(&v, ev, deliveryID, 1)
	if missing := p.Missing(&v); missing != "" {
		return false, "skipped: require: " + missing + " is missing"
	}
	if why := p.OutsideWindow(&v, ev.Timestamp); why != "" {
		return false, "skipped: " + why
	}
	return true, ""
}

// lifecycleNotes says what the partner's lifecycle rules would do with
// the event's delivery beyond routing: those that depend on the other
// deliveries in Redis, which render cannot see.
func lifecycleNotes(p *config.Partner, ev *event.Event, deliveryID string) []string {
	var notes []string
	var v templates.Values
	p.Values(&v, ev, deliveryID, 1)
	if p.OrderBy != 0 {
		if val := p.OrderValue(&v); val != "" {
			notes = append(notes, fmt.Sprintf("order_by %s: waits until every earlier delivery to this partner with %s %q is final", p.OrderBy, p.OrderBy, val))
		} else {
			notes = append(notes, fmt.Sprintf("order_by %s: the event has none, so it is not ordered", p.OrderBy))
		}
	}
	if p.Delay > 0 {
		notes = append(notes, fmt.Sprintf("delay: held %s before its first attempt", config.ShortDuration(p.Delay)))
	}
	if p.CancelOnReject && p.Delay > 0 {
		switch {
		case ev.TransactionID == "":
			notes = append(notes, "cancel_on_reject: the event has no transaction_id, so no rejection can cancel it")
		case ev.Rejected():
			notes = append(notes, fmt.Sprintf("cancel_on_reject: a rejection; if a delivery of transaction %q is still held, both are skipped (%s) and nothing is sent", ev.TransactionID, config.ReasonRejectedBeforeSend))
		default:
			notes = append(notes, fmt.Sprintf("cancel_on_reject: a rejection of transaction %q within the delay skips it (%s)", ev.TransactionID, config.ReasonRejectedBeforeSend))
		}
	}
	if p.Dedup != nil {
		key, err := p.DedupKey(&v)
		switch {
		case err != nil || key == "":
			notes = append(notes, "dedup: the key renders empty, so it is not guarded")
		default:
			notes = append(notes, fmt.Sprintf("dedup: key %q; skipped (%s) if another delivery of it was delivered in the last %s or is being attempted", key, config.ReasonDuplicate, config.ShortDuration(p.Dedup.Window)))
		}
	}
	return notes
}

// secretHeaderRE matches header names whose values are credentials.
var secretHeaderRE = regexp.MustCompile(`(?i)^(authorization|proxy-authorization|cookie)$|token|secret|passw|api-?key|apikey|x-api|credential`)

// fill copies the request into r.Request, headers sorted by name, with
// credential-like values masked unless show.
func (r *rendered) fill(req *http.Request, body []byte, show bool) {
	r.Request = renderedRequest{Method: req.Method, URL: req.URL.String(), Body: string(body), Headers: make(map[string]string, len(req.Header))}
	for k, vs := range req.Header {
		v := strings.Join(vs, ", ")
		if !show && secretHeaderRE.MatchString(k) && k != "Idempotency-Key" {
			v = fmt.Sprintf("<masked, %d characters; --show-secrets prints it>", len(v))
		}
		r.Request.Headers[k] = v
		r.Request.names = append(r.Request.names, k)
	}
	slices.Sort(r.Request.names)
}

// signedRequest is the http.Request a Sender would send now: headers and
// signature included (the signature depends on the time, as it will).
func signedRequest(p *config.Partner, r *rendered, now time.Time) (*http.Request, error) {
	req, err := http.NewRequest(r.req.Method, r.req.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("partner %q: %w", p.ID, err)
	}
	req.Header = r.req.Header.Clone()
	if p.Signer != nil {
		p.Signer.Header(req.Header, r.DeliveryID, now, r.req.Body)
	}
	return req, nil
}

func (r *rendered) print(w io.Writer, p *config.Partner) {
	fmt.Fprintf(w, "partner:  %s\ndelivery: %s\n", r.Partner, r.DeliveryID)
	if r.Send {
		fmt.Fprintln(w, "routing:  a worker would send this")
	} else {
		fmt.Fprintf(w, "routing:  a worker would NOT send this: %s\n", r.Reason)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note:     %s\n", n)
	}
	if p.Signer != nil {
		fmt.Fprintln(w, "signing:  standard-webhooks, signed at this moment (secrets are never printed)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s %s\n", r.Request.Method, r.Request.URL)
	for _, k := range r.Request.names {
		fmt.Fprintf(w, "%s: %s\n", k, r.Request.Headers[k])
	}
	if r.Request.Body != "" {
		fmt.Fprintf(w, "\n%s\n", r.Request.Body)
	}
}

func partnersRender(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	_, p, r, err := prepare(c)
	if err != nil {
		return err
	}
	req, err := signedRequest(p, r, time.Now())
	if err != nil {
		return err
	}
	r.fill(req, r.req.Body, c.Bool("show-secrets"))
	if format == "json" {
		return writeJSON(c.App.Writer, r)
	}
	r.print(c.App.Writer, p)
	return nil
}

// maxResponseShown is how much of the partner's answer `partners test`
// prints.
const maxResponseShown = 512

// testResult is `partners test -o json`.
type testResult struct {
	*rendered
	Status     int    `json:"status"`
	LatencyMS  int64  `json:"latency_ms"`
	Outcome    string `json:"outcome"`
	OutcomeWhy string `json:"outcome_reason"`
	// Rule is the responses rule that decided; "" when none did.
	Rule      string `json:"rule,omitempty"`
	Response  string `json:"response"`
	Truncated bool   `json:"response_truncated,omitempty"`
}

func partnersTest(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	cfg, p, r, err := prepare(c)
	if err != nil {
		return err
	}
	// The workers' client: same guard, same User-Agent.
	client := netguard.New(netguard.Config{
		AllowPrivate: cfg.Delivery.AllowPrivateNetworks,
		Timeout:      p.Timeout,
		UserAgent:    "postback/" + version.Version,
	})
	defer client.CloseIdleConnections()
	now := time.Now()
	sender := &delivery.Sender{Client: client, Now: func() time.Time { return now }}
	start := time.Now()
	res, resp := sender.Send(c.Context, p, r.req, r.DeliveryID)
	latency := time.Since(start)
	dec := p.Success.Classify(res, time.Now())

	// What was sent: the same signature Send made, as its clock was pinned.
	req, err := signedRequest(p, r, now)
	if err != nil {
		return err
	}
	r.fill(req, r.req.Body, c.Bool("show-secrets"))
	out := testResult{rendered: r, Status: res.StatusCode, Outcome: dec.Outcome.String(), OutcomeWhy: dec.Reason, Rule: dec.Rule}
	if resp != nil {
		latency = resp.Duration
		body := resp.Body
		if len(body) > maxResponseShown {
			body, out.Truncated = body[:maxResponseShown], true
		}
		out.Response, out.Truncated = string(body), out.Truncated || resp.Truncated
	}
	out.LatencyMS = latency.Milliseconds()

	w := c.App.Writer
	if format == "json" {
		if err := writeJSON(w, out); err != nil {
			return err
		}
	} else {
		r.print(w, p)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "---")
		if res.StatusCode != 0 {
			fmt.Fprintf(w, "status:   %d %s\n", res.StatusCode, http.StatusText(res.StatusCode))
		} else {
			fmt.Fprintln(w, "status:   no response")
		}
		fmt.Fprintf(w, "latency:  %s\n", latency.Round(100*time.Microsecond))
		fmt.Fprintf(w, "outcome:  %s (%s)\n", out.Outcome, out.OutcomeWhy)
		if out.Rule != "" {
			fmt.Fprintf(w, "rule:     %s\n", out.Rule)
		} else if len(p.Responses) > 0 {
			fmt.Fprintln(w, "rule:     no responses rule matched: success decided")
		}
		if resp != nil {
			more := ""
			if out.Truncated {
				more = fmt.Sprintf(" (first %d bytes)", len(out.Response))
			}
			fmt.Fprintf(w, "response%s:\n%s\n", more, out.Response)
		}
	}
	if dec.Outcome != retry.Delivered && dec.Outcome != retry.Duplicate {
		return fmt.Errorf("partner %q: test postback not delivered: %s (%s)", p.ID, dec.Outcome, dec.Reason)
	}
	return nil
}
