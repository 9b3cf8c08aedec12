package presets

import (
	_ "embed"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:generate go run ./gendocs ../../docs/partners.md

//go:embed partners.md.tmpl
var docsTemplate string

// Catalogue is docs/partners.md: its prose, with the catalogue of every
// preset generated from the definitions.
func Catalogue() []byte {
	var b strings.Builder
	b.WriteString("| preset | vendor | method | settings | what it sends |\n|---|---|---|---|---|\n")
	for _, p := range All() {
		var keys []string
		for _, s := range p.Settings {
			k := "`" + s.Key + "`"
			if !s.Required() {
				k += " (optional)"
			}
			keys = append(keys, k)
		}
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s | %s |\n", p.Name, p.Name, p.Vendor, p.Method(), strings.Join(keys, ", "), p.Summary)
	}
	for _, p := range All() {
		fmt.Fprintf(&b, "\n### %s\n\n", p.Name)
		fmt.Fprintf(&b, "%s: %s.\n\n", p.Vendor, p.Summary)
		fmt.Fprintf(&b, "```sh\npostback partners add --preset %s --id ID", p.Name)
		for _, s := range p.Settings {
			if s.Required() {
				fmt.Fprintf(&b, " --set %s=%s", s.Key, s.Example)
			}
		}
		b.WriteString("\n```\n\n")
		b.WriteString("| setting | | description |\n|---|---|---|\n")
		for _, s := range p.Settings {
			how := "required"
			switch {
			case s.Secret:
				how = "secret: `${env:ID_" + strings.ToUpper(s.Key) + "}` unless given as another `${env:…}`"
			case s.Default != "":
				how = "default `" + s.Default + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Key, how, cell(s.Description))
		}
		fmt.Fprintf(&b, "\nThe block it adds (`<key>` is a setting):\n\n```yaml\n%s```\n", Shown(string(encodeBlock(&p.Partner))))
		if len(p.Needs) > 0 {
			fmt.Fprintf(&b, "\nNeeds %s: a build without it refuses the block at load.\n", "`{"+strings.Join(p.Needs, "}`, `{")+"}`")
		}
		c := p.Contract
		fmt.Fprintf(&b, "\nContract, from %s:", c.Source)
		if c.Example != "" {
			fmt.Fprintf(&b, " the vendor documents\n\n```\n%s\n```\n\n", c.Example)
			if len(c.Params) > 0 {
				fmt.Fprintf(&b, "with the further parameters %s, ", "`"+strings.Join(c.Params, "`, `")+"`")
			}
			b.WriteString("and for the test event the preset sends\n\n")
		} else {
			b.WriteString(" for the test event the preset sends\n\n")
		}
		fmt.Fprintf(&b, "```\n%s %s\n", c.Want.Method, c.Want.URL)
		if c.Want.Body != "" {
			fmt.Fprintf(&b, "\n%s\n", c.Want.Body)
		}
		b.WriteString("```\n")
		if len(c.Answers) > 0 {
			b.WriteString("\n| answer | outcome | whose verdict |\n|---|---|---|\n")
			for _, a := range c.Answers {
				body := "(empty)"
				if a.Body != "" {
					body = "`" + a.Body + "`"
				}
				whose := "the vendor's documentation"
				if a.Source == "preset" {
					whose = "the preset's (not documented)"
				}
				fmt.Fprintf(&b, "| %d %s | %s | %s |\n", a.Status, cell(body), a.Outcome, whose)
			}
		}
		if len(p.Notes) > 0 {
			b.WriteString("\n")
			for _, n := range p.Notes {
				fmt.Fprintf(&b, "- %s\n", n)
			}
		}
	}
	return []byte(strings.Replace(docsTemplate, "{{catalogue}}\n", b.String(), 1))
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// encodeBlock is a preset's partner block as YAML.
func encodeBlock(n *yaml.Node) []byte {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(clone(n)); err != nil {
		return []byte(err.Error())
	}
	_ = enc.Close()
	return []byte(b.String())
}
