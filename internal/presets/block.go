package presets

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Block is a preset filled in for one partner: the partner's mapping, as
// `partners add` writes it.
type Block struct {
	Node *yaml.Node
	// Env lists the environment variables the block reads (${env:NAME}),
	// in the order they appear.
	Env []string
}

var envRefRE = regexp.MustCompile(`^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$`)

// EnvName is the variable a secret setting defaults to for partner id:
// "acme-1" and "secure" give ACME_1_SECURE.
func EnvName(id, key string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_").Replace(id) + "_" + key)
}

// Build fills the preset in for partner id with the --set values. Every
// required setting must be given; a secret may only be given as
// ${env:NAME}, and defaults to ${env:ID_KEY}.
func (p *Preset) Build(id string, values map[string]string) (*Block, error) {
	known := map[string]*Setting{}
	for i := range p.Settings {
		known[p.Settings[i].Key] = &p.Settings[i]
	}
	var unknown []string
	for k := range values {
		if known[k] == nil {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("preset %s has no setting %s (settings: %s)", p.Name, strings.Join(unknown, ", "), strings.Join(p.keys(), ", "))
	}
	resolved := map[string]string{}
	var missing, problems []string
	for _, s := range p.Settings {
		v, given := values[s.Key]
		switch {
		case given && s.Secret:
			if !envRefRE.MatchString(v) {
				problems = append(problems, fmt.Sprintf("--set %s: a secret is not written in the config file: give ${env:NAME}, or leave it out for ${env:%s}", s.Key, EnvName(id, s.Key)))
			}
		case given:
			if !s.re.MatchString(v) {
				problems = append(problems, fmt.Sprintf("--set %s=%q: want %s (%s)", s.Key, v, s.Pattern, s.Description))
			}
		case s.Secret:
			v = "${env:" + EnvName(id, s.Key) + "}"
		case s.Default != "":
			v = s.Default
		default:
			missing = append(missing, fmt.Sprintf("--set %s=… (%s, e.g. %s)", s.Key, s.Description, s.Example))
		}
		resolved[s.Key] = v
	}
	if len(missing) > 0 {
		problems = append(problems, "preset "+p.Name+" needs "+strings.Join(missing, "; "))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}

	node := clone(&p.Partner)
	b := &Block{Node: node}
	walk(node, func(n *yaml.Node) {
		n.Value = setRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			return resolved[setRE.FindStringSubmatch(m)[1]]
		})
		for _, m := range envInRE.FindAllStringSubmatch(n.Value, -1) {
			if !slices.Contains(b.Env, m[1]) {
				b.Env = append(b.Env, m[1])
			}
		}
	})
	idKey := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "id"}
	idVal := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: id}
	node.Content = append([]*yaml.Node{idKey, idVal}, node.Content...)
	return b, nil
}

var envInRE = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}`)

func (p *Preset) keys() []string {
	out := make([]string, len(p.Settings))
	for i, s := range p.Settings {
		out[i] = s.Key
	}
	return out
}

// clone copies n deeply, positions cleared, so that the encoder lays the
// copy out afresh.
func clone(n *yaml.Node) *yaml.Node {
	c := *n
	c.Line, c.Column = 0, 0
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, x := range n.Content {
		c.Content[i] = clone(x)
	}
	return &c
}
