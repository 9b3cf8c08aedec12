package presets

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed defs/*.yaml
var defs embed.FS

// Preset is one built-in partner template. Presets are read once from
// defs/ and shared; treat them as read-only.
type Preset struct {
	// Name is what `partners add --preset` takes: "tune", "keitaro".
	Name string `yaml:"name"`
	// Vendor is who documents the format: "TUNE / HasOffers".
	Vendor string `yaml:"vendor"`
	// Summary says in one line what the partner receives.
	Summary string `yaml:"summary"`
	// Needs lists macros the preset uses that a build may not know yet;
	// such a preset does not load where one is unknown.
	Needs []string `yaml:"needs,omitempty"`
	// Settings are what only the user knows, given with --set KEY=VALUE.
	Settings []Setting `yaml:"settings"`
	// Notes are what the user still has to decide after `partners add`.
	Notes []string `yaml:"notes,omitempty"`
	// Partner is the partner block, without its id; ${set:KEY} stands for
	// a setting.
	Partner yaml.Node `yaml:"partner"`
	// Contract is what the preset's test checks it against.
	Contract Contract `yaml:"contract"`
}

// Setting is one --set key of a preset.
type Setting struct {
	Key         string `yaml:"key" json:"key"`
	Description string `yaml:"description" json:"description"`
	// Default applies when --set does not give the key; "" with Secret
	// unset means the key is required.
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
	// Secret settings are never written in the file: they default to
	// ${env:ID_KEY} and --set may only name another ${env:…}.
	Secret bool `yaml:"secret,omitempty" json:"secret,omitempty"`
	// Pattern is what a given value must match (not for secrets).
	Pattern string `yaml:"pattern,omitempty" json:"-"`
	// Example is a value for the docs and the contract test.
	Example string `yaml:"example" json:"example,omitempty"`

	re *regexp.Regexp
}

// Required reports whether `partners add` needs --set for the key.
func (s Setting) Required() bool { return s.Default == "" && !s.Secret }

// Contract is a preset's documented exchange: the request its vendor
// shows, and the answers its vendor documents.
type Contract struct {
	// Source says where Example comes from: the vendor's own example, or
	// the documented parameter names when the vendor gives none.
	Source string `yaml:"source"`
	// Example is the documented request URL, <key> standing for the
	// setting key; "" when the vendor documents none.
	Example string `yaml:"example,omitempty"`
	// Params are further documented query parameters the preset sends,
	// after the example's, in this order.
	Params []string `yaml:"params,omitempty"`
	// Scheme is the scheme the preset sends when it differs from the
	// example's (https where a page shows http://).
	Scheme string `yaml:"scheme,omitempty"`
	// Event is the fixed event (JSON) the test renders.
	Event string `yaml:"event"`
	// Want is the request the preset renders for Event with the settings'
	// examples, secrets read as "env-NAME".
	Want Request `yaml:"want"`
	// Answers are responses and the outcome each must get.
	Answers []Answer `yaml:"answers,omitempty"`
}

// Request is a rendered request.
type Request struct {
	Method  string            `yaml:"method"`
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers,omitempty"`
	Body    string            `yaml:"body,omitempty"`
}

// Answer is one response and its outcome. Source says whose the verdict
// is: "vendor" when the vendor documents it, "preset" when it is this
// preset's choice for an undocumented answer.
type Answer struct {
	Status  int    `yaml:"status"`
	Body    string `yaml:"body"`
	Outcome string `yaml:"outcome"`
	Source  string `yaml:"source"`
}

var (
	loadOnce sync.Once
	all      []*Preset
	loadErr  error
)

// All returns every preset, by name. It panics if a definition is bad:
// they are compiled into the binary, and the package's tests read them.
func All() []*Preset {
	loadOnce.Do(func() { all, loadErr = load(defs) })
	if loadErr != nil {
		panic(loadErr)
	}
	return all
}

// ByName returns the preset called name, or nil.
func ByName(name string) *Preset {
	for _, p := range All() {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Names lists the presets' names, for messages.
func Names() []string {
	var out []string
	for _, p := range All() {
		out = append(out, p.Name)
	}
	return out
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	keyRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	setRE  = regexp.MustCompile(`\$\{set:([a-z][a-z0-9_]*)\}`)
)

func load(fsys fs.FS) ([]*Preset, error) {
	files, err := fs.Glob(fsys, "defs/*.yaml")
	if err != nil {
		return nil, err
	}
	var out []*Preset
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		p, err := parse(data)
		if err != nil {
			return nil, fmt.Errorf("presets: %s: %w", f, err)
		}
		if want := strings.TrimSuffix(path.Base(f), ".yaml"); p.Name != want {
			return nil, fmt.Errorf("presets: %s: name %q: want %q, the file's name", f, p.Name, want)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Preset) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func parse(data []byte) (*Preset, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	p := &Preset{}
	if err := dec.Decode(p); err != nil {
		return nil, err
	}
	switch {
	case !nameRE.MatchString(p.Name):
		return nil, fmt.Errorf("name %q must match %s", p.Name, nameRE)
	case p.Vendor == "" || p.Summary == "":
		return nil, fmt.Errorf("vendor and summary are required")
	case p.Partner.Kind != yaml.MappingNode:
		return nil, fmt.Errorf("partner: want a mapping")
	}
	keys := map[string]bool{}
	for i := range p.Settings {
		s := &p.Settings[i]
		if !keyRE.MatchString(s.Key) || keys[s.Key] {
			return nil, fmt.Errorf("settings[%d]: key %q must match %s, once", i, s.Key, keyRE)
		}
		keys[s.Key] = true
		if s.Description == "" || strings.Contains(s.Description, "\n") {
			return nil, fmt.Errorf("setting %s: want a one-line description", s.Key)
		}
		if !s.Secret {
			if s.Pattern == "" {
				return nil, fmt.Errorf("setting %s: a pattern is required", s.Key)
			}
			re, err := regexp.Compile(s.Pattern)
			if err != nil {
				return nil, fmt.Errorf("setting %s: pattern: %w", s.Key, err)
			}
			s.re = re
		}
	}
	var bad error
	walk(&p.Partner, func(n *yaml.Node) {
		for _, m := range setRE.FindAllStringSubmatch(n.Value, -1) {
			if !keys[m[1]] && bad == nil {
				bad = fmt.Errorf("partner: ${set:%s} is not a setting", m[1])
			}
		}
	})
	if bad != nil {
		return nil, bad
	}
	for i := 0; i+1 < len(p.Partner.Content); i += 2 {
		if p.Partner.Content[i].Value == "id" {
			return nil, fmt.Errorf("partner: no id: partners add gives it")
		}
	}
	return p, nil
}

// walk calls fn for every scalar under n.
func walk(n *yaml.Node, fn func(*yaml.Node)) {
	if n.Kind == yaml.ScalarNode {
		fn(n)
	}
	for _, c := range n.Content {
		walk(c, fn)
	}
}

// Field returns the scalar value of the partner block's key (as written,
// ${set:KEY} included), or "".
func (p *Preset) Field(key string) string {
	for i := 0; i+1 < len(p.Partner.Content); i += 2 {
		if p.Partner.Content[i].Value == key && p.Partner.Content[i+1].Kind == yaml.ScalarNode {
			return p.Partner.Content[i+1].Value
		}
	}
	return ""
}

// Method is the preset's HTTP method (GET unless its block says).
func (p *Preset) Method() string {
	if m := p.Field("method"); m != "" {
		return strings.ToUpper(m)
	}
	return "GET"
}

// Shown is a template with each ${set:KEY} written <KEY>, for people.
func Shown(s string) string { return setRE.ReplaceAllString(s, "<$1>") }

// ResponseRules is how many responses rules the preset has.
func (p *Preset) ResponseRules() int {
	for i := 0; i+1 < len(p.Partner.Content); i += 2 {
		if p.Partner.Content[i].Value == "responses" {
			return len(p.Partner.Content[i+1].Content)
		}
	}
	return 0
}
