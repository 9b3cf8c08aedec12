package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads and compiles the config file at path. A failed load returns
// *Error listing every problem.
func Load(path string) (*Config, error) {
	cfg, _, err := Check(path)
	return cfg, err
}

// Check is Load that also returns warnings: settings that load but are
// risky in production (the SSRF guard off, plain http://, a signing
// secret written in the file…), each a Problem with Warning set.
func Check(path string) (*Config, []Problem, error) {
	data, err := readFile(path, " (name it with --config or POSTBACK_CONFIG)")
	if err != nil {
		return nil, nil, err
	}
	return CheckData(path, data, os.LookupEnv)
}

// readFile reads the config file at path; hint follows "not found".
func readFile(path, hint string) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config file %s not found%s", path, hint)
	case err != nil:
		return nil, fmt.Errorf("read config: %w", err)
	}
	return data, nil
}

// Parse compiles config data; name is the file name used in messages and
// lookupEnv resolves ${env:NAME}.
func Parse(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	cfg, _, err := CheckData(name, data, lookupEnv)
	return cfg, err
}

// CheckData is Parse that also returns warnings, as Check.
func CheckData(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, []Problem, error) {
	cfg, l, err := parse(name, data, lookupEnv, false)
	return cfg, l.warnings, err
}

// LoadIntake reads the config file at path for a process that only
// enqueues (a Go backend's Client): it needs each partner's routing
// (events, match, when, privacy, timeout), not how to reach it. A
// partner's url, headers, body, content_type, signing and success are
// not read, so their ${env:NAME} secrets need not be set. The config it
// returns has IntakeOnly set and cannot run deliveries.
func LoadIntake(path string) (*Config, error) {
	data, err := readFile(path, "")
	if err != nil {
		return nil, err
	}
	return ParseIntake(path, data, os.LookupEnv)
}

// ParseIntake is LoadIntake on config data (see Parse).
func ParseIntake(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	cfg, _, err := parse(name, data, lookupEnv, true)
	return cfg, err
}

func parse(name string, data []byte, lookupEnv func(string) (string, bool), intakeOnly bool) (*Config, *loader, error) {
	l := &loader{file: name, env: lookupEnv, lines: strings.Split(string(data), "\n"), intakeOnly: intakeOnly}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		l.problems = append(l.problems, yamlProblem(name, err))
		return nil, l, &Error{Problems: l.problems}
	}
	api := APIConfig{MaxBodyBytes: DefaultMaxBodyBytes, DedupWindow: DefaultDedupWindow, WaitTimeout: DefaultWaitTimeout}
	delivery := DeliveryConfig{Timeout: DefaultTimeout, AttemptLogRetention: DefaultAttemptLogRetention}
	var partners []*Partner
	var ops OpsConfig
	rc := RedisConfig{Shards: 1}
	if len(doc.Content) == 0 {
		l.errf(&doc, "", "", "empty config: want api, delivery and partners sections")
		return nil, l, &Error{Problems: l.problems}
	}
	root := doc.Content[0]
	l.mapping(root, "", "", func(key string, k, v *yaml.Node) {
		switch key {
		case "api":
			l.api(v, &api)
		case "delivery":
			l.delivery(v, &delivery)
		case "partners":
			partners = l.partners(v, delivery)
		case "ops":
			l.ops(v, &ops)
		case "redis":
			l.redis(v, &rc)
		default:
			l.errf(k, "", key, "unknown section (want api, delivery, partners, ops or redis)")
		}
	})
	l.retention(root, api, delivery)
	if len(l.problems) > 0 {
		slices.SortStableFunc(l.problems, func(a, b Problem) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, l, &Error{Problems: l.problems}
	}
	// A partner without its own timeout takes the delivery default; the
	// sections may come in any order, so apply it last.
	for _, p := range partners {
		if p.Timeout == 0 {
			p.Timeout = delivery.Timeout
		}
	}
	cfg := NewConfig(name, api, delivery, partners)
	cfg.IntakeOnly = intakeOnly
	cfg.Ops = ops
	cfg.Redis = rc
	if !intakeOnly { // an intake-only load has not read what the warnings look at
		l.warn(root, api, delivery, partners)
	}
	return cfg, l, nil
}

type loader struct {
	file  string
	lines []string // of the file, for positions inside block scalars
	env   func(string) (string, bool)
	// intakeOnly skips what only sending needs (see LoadIntake).
	intakeOnly bool
	problems   []Problem
	warnings   []Problem
	// nodes remembers where some values were, for warnings and for
	// problems found after a section is read (retry validation).
	nodes map[string]*yaml.Node // key: partner + "\x00" + field
}

// remember notes the node of a partner's field.
func (l *loader) remember(partner, field string, n *yaml.Node) {
	if l.nodes == nil {
		l.nodes = make(map[string]*yaml.Node)
	}
	l.nodes[partner+"\x00"+field] = n
}

// node returns the remembered node of a partner's field, or fallback.
func (l *loader) node(partner, field string, fallback *yaml.Node) *yaml.Node {
	if n := l.nodes[partner+"\x00"+field]; n != nil {
		return n
	}
	return fallback
}

func (l *loader) errf(n *yaml.Node, partner, field, format string, args ...any) {
	l.errAt(n.Line, n.Column, partner, field, fmt.Sprintf(format, args...))
}

func (l *loader) errAt(line, col int, partner, field, msg string) {
	l.problems = append(l.problems, Problem{File: l.file, Line: line, Column: col, Partner: partner, Field: field, Msg: msg})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Column: 1, Msg: "invalid YAML: " + m[2]}
	}
	return Problem{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// mapping calls fn for each key of a mapping node, refusing duplicates.
func (l *loader) mapping(n *yaml.Node, partner, field string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		l.errf(n, partner, field, "want a mapping of keys to values")
		return
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			l.errf(k, partner, join(field, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, v)
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

var envRE = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`)

// str reads a scalar and expands ${env:NAME}.
func (l *loader) str(n *yaml.Node, partner, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		l.errf(n, partner, field, "want a single value")
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	ok := true
	out := envRE.ReplaceAllStringFunc(n.Value, func(m string) string {
		name := envRE.FindStringSubmatch(m)[1]
		v, set := l.env(name)
		if !set {
			l.errf(n, partner, field, "environment variable %s is not set", name)
			ok = false
		}
		return v
	})
	return out, ok
}

func (l *loader) strs(n *yaml.Node, partner, field string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errf(n, partner, field, "want a list")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		if s, ok := l.str(c, partner, fmt.Sprintf("%s[%d]", field, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

// keys reads api.keys. A key whose ${env:NAME} is unset is left out and
// reported in problems rather than failing the load (see
// APIConfig.KeyProblems).
func (l *loader) keys(n *yaml.Node, field string) (keys, problems []string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errf(n, "", field, "want a list")
		return nil, nil
	}
	for i, c := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		if c.Kind == yaml.ScalarNode {
			if m := envRE.FindStringSubmatch(c.Value); m != nil {
				if _, set := l.env(m[1]); !set {
					problems = append(problems, fmt.Sprintf("%s:%d:%d: %s: environment variable %s is not set", l.file, c.Line, c.Column, f, m[1]))
					continue
				}
			}
		}
		key, ok := l.str(c, "", f)
		if !ok {
			continue
		}
		if len(key) < 16 {
			l.errf(c, "", f, "API key shorter than 16 characters")
		}
		keys = append(keys, key)
	}
	return keys, problems
}

func (l *loader) duration(n *yaml.Node, partner, field string) time.Duration {
	s, ok := l.str(n, partner, field)
	if !ok {
		return 0
	}
	d, err := parseDuration(s)
	if err != nil || d <= 0 {
		l.errf(n, partner, field, "%q is not a positive duration like 30s, 5m or 24h", s)
		return 0
	}
	return d
}

// parseDuration reads a Go duration, and days: "7d", "1d12h".
func parseDuration(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.Atoi(days)
	if err != nil || n < 0 || n > 3650 {
		return 0, fmt.Errorf("bad number of days in %q", s)
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("bad duration after the days in %q", s)
		}
		d += r
	}
	return d, nil
}

func (l *loader) boolean(n *yaml.Node, partner, field string) bool {
	s, ok := l.str(n, partner, field)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		l.errf(n, partner, field, "%q is not true or false", s)
	}
	return b
}

func (l *loader) integer(n *yaml.Node, partner, field string, min int) int {
	s, ok := l.str(n, partner, field)
	if !ok {
		return 0
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < min {
		l.errf(n, partner, field, "%q is not a whole number >= %d", s, min)
		return 0
	}
	return i
}

func (l *loader) api(n *yaml.Node, c *APIConfig) {
	l.mapping(n, "", "api", func(key string, k, v *yaml.Node) {
		f := "api." + key
		switch key {
		case "keys":
			l.remember("", f, v)
			c.Keys, c.KeyProblems = l.keys(v, f)
		case "max_body_bytes":
			c.MaxBodyBytes = int64(l.integer(v, "", f, 1024))
		case "dedup_window":
			l.remember("", f, v)
			c.DedupWindow = l.duration(v, "", f)
		case "wait_replicas":
			c.WaitReplicas = l.integer(v, "", f, 0)
		case "wait_timeout":
			if d := l.duration(v, "", f); d > MaxWaitTimeout {
				l.errf(v, "", f, "%s is longer than %s: the API answers within 3s", ShortDuration(d), ShortDuration(MaxWaitTimeout))
			} else if d > 0 {
				c.WaitTimeout = d
			}
		case "strict":
			c.Strict = l.boolean(v, "", f)
		default:
			l.errf(k, "", f, "unknown key (want keys, max_body_bytes, dedup_window, wait_replicas, wait_timeout or strict)")
		}
	})
}

func (l *loader) delivery(n *yaml.Node, c *DeliveryConfig) {
	l.mapping(n, "", "delivery", func(key string, k, v *yaml.Node) {
		f := "delivery." + key
		switch key {
		case "timeout":
			c.Timeout = l.duration(v, "", f)
		case "allow_private_networks":
			l.remember("", f, v)
			c.AllowPrivateNetworks = l.boolean(v, "", f)
		case "attempt_log_retention":
			l.remember("", f, v)
			c.AttemptLogRetention = l.duration(v, "", f)
		default:
			l.errf(k, "", f, "unknown key (want timeout, allow_private_networks or attempt_log_retention)")
		}
	})
}

// retention holds delivery records to outlive event claims: a repeated
// event re-stores the deliveries that have no record, which is only safe
// while "no record" means "never taken up", not "record expired".
func (l *loader) retention(root *yaml.Node, api APIConfig, delivery DeliveryConfig) {
	if api.DedupWindow <= 0 || delivery.AttemptLogRetention <= 0 || delivery.AttemptLogRetention >= api.DedupWindow {
		return // unset or invalid values are reported where they are read
	}
	n := l.node("", "delivery.attempt_log_retention", l.node("", "api.dedup_window", root))
	l.errf(n, "", "delivery.attempt_log_retention",
		"%s is shorter than api.dedup_window (%s): delivery records must be kept at least as long as event ids are, "+
			"or a repeated event could be sent again after its records expire; raise attempt_log_retention or lower dedup_window",
		ShortDuration(delivery.AttemptLogRetention), ShortDuration(api.DedupWindow))
}

// ShortDuration writes d as a config would: 24h, not 24h0m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (l *loader) partners(n *yaml.Node, _ DeliveryConfig) []*Partner {
	if n.Kind != yaml.SequenceNode {
		l.errf(n, "", "partners", "want a list of partners")
		return nil
	}
	var out []*Partner
	seen := make(map[string]*yaml.Node)
	for i, pn := range n.Content {
		p := l.partner(pn, i)
		if p == nil {
			continue
		}
		if prev, dup := seen[p.ID]; dup {
			l.errf(pn, p.ID, "id", "duplicate partner id (first at line %d)", prev.Line)
			continue
		}
		seen[p.ID] = pn
		out = append(out, p)
	}
	return out
}
