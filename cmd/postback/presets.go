package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/presets"
)

// partnersPresetsCommand is `postback partners presets`: the built-in
// presets, what each sends and the --set keys it takes.
func partnersPresetsCommand() *cli.Command {
	return &cli.Command{
		Name:   "presets",
		Usage:  "list the built-in partner presets and the --set keys each takes",
		Flags:  []cli.Flag{outputFlag()},
		Action: partnersPresets,
	}
}

// presetRow is one preset in `partners presets -o json`.
type presetRow struct {
	Name    string `json:"name"`
	Vendor  string `json:"vendor"`
	Summary string `json:"summary"`
	// Sends is the request, <key> standing for each setting.
	Sends presetSends `json:"sends"`
	// ResponseRules counts the preset's responses rules.
	ResponseRules int `json:"response_rules"`
	// Needs lists macros this build must know for the preset to load.
	Needs    []string        `json:"needs,omitempty"`
	Settings []presetSetting `json:"settings"`
	Notes    []string        `json:"notes,omitempty"`
}

type presetSends struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	ContentType string `json:"content_type,omitempty"`
	Body        string `json:"body,omitempty"`
}

type presetSetting struct {
	Key         string `json:"key"`
	Description string `json:"description"`
	Required    bool   `json:"required"`
	Default     string `json:"default,omitempty"`
	// Secret settings stay in the environment: they default to
	// ${env:ID_KEY}.
	Secret  bool   `json:"secret,omitempty"`
	Example string `json:"example,omitempty"`
}

func presetRows() []presetRow {
	var rows []presetRow
	for _, p := range presets.All() {
		r := presetRow{
			Name: p.Name, Vendor: p.Vendor, Summary: p.Summary, Needs: p.Needs, Notes: p.Notes,
			Sends: presetSends{
				Method: p.Method(), URL: presets.Shown(p.Field("url")),
				ContentType: p.Field("content_type"), Body: presets.Shown(p.Field("body")),
			},
			ResponseRules: p.ResponseRules(),
			Settings:      []presetSetting{},
		}
		for _, s := range p.Settings {
			ps := presetSetting{Key: s.Key, Description: s.Description, Required: s.Required(), Default: s.Default, Secret: s.Secret}
			if !s.Secret {
				ps.Example = s.Example
			} else {
				ps.Default = "${env:" + presets.EnvName("ID", s.Key) + "}"
			}
			r.Settings = append(r.Settings, ps)
		}
		rows = append(rows, r)
	}
	return rows
}

func partnersPresets(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	rows := presetRows()
	if format == "json" {
		return writeJSON(c.App.Writer, rows)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVENDOR\tMETHOD\tSETTINGS\tSUMMARY")
	for _, r := range rows {
		var keys []string
		for _, s := range r.Settings {
			k := s.Key
			if !s.Required {
				k = "[" + k + "]"
			}
			keys = append(keys, k)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Vendor, r.Sends.Method, strings.Join(keys, " "), r.Summary)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "\n[key]: optional. Add one: postback partners add --preset NAME --id ID --set KEY=VALUE…")
	return nil
}

// partnersAddCommand is `postback partners add`: a preset, filled in,
// appended to the config file.
func partnersAddCommand() *cli.Command {
	return &cli.Command{
		Name:  "add",
		Usage: "append a partner made from a preset to the config file (its comments and layout kept), and validate it",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Usage: "preset name, see partners presets (required)"},
			&cli.StringFlag{Name: "id", Usage: "the new partner's id (required)"},
			&cli.GenericFlag{Name: "set", Value: &settingsFlag{}, Usage: "a preset setting, KEY=VALUE; repeat for each (a value may hold commas)"},
		},
		Action: partnersAdd,
	}
}

// settingsFlag is --set: repeated, each value whole. (A string slice
// flag would split "goals=install=1,purchase=2" at its comma.)
type settingsFlag struct{ values []string }

func (f *settingsFlag) Set(v string) error { f.values = append(f.values, v); return nil }
func (f *settingsFlag) String() string     { return strings.Join(f.values, " ") }

var addIDRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// placeholderEnv is what an unset ${env:NAME} reads as while `partners add`
// validates the new file: the user sets it before the workers start.
const placeholderEnv = "postback-add-placeholder"

func partnersAdd(c *cli.Context) error {
	if c.String("preset") == "" || c.String("id") == "" {
		return usageError("partners add: --preset and --id are required")
	}
	p := presets.ByName(c.String("preset"))
	if p == nil {
		return usageError("partners add: unknown preset %q (presets: %s)", c.String("preset"), strings.Join(presets.Names(), ", "))
	}
	id := c.String("id")
	if !addIDRE.MatchString(id) {
		return usageError("partners add: --id %q must match [a-z0-9_-]{1,64}", id)
	}
	values := map[string]string{}
	var sets []string
	if f, ok := c.Generic("set").(*settingsFlag); ok {
		sets = f.values
	}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError("partners add: --set %q: want KEY=VALUE", kv)
		}
		if _, dup := values[k]; dup {
			return usageError("partners add: --set %s given twice", k)
		}
		values[k] = v
	}
	block, err := p.Build(id, values)
	if err != nil {
		return err
	}
	path := c.String("config")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	out, err := presets.Append(data, block.Node)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var unset []string
	lookup := func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		if !slices.Contains(unset, name) {
			unset = append(unset, name)
		}
		return placeholderEnv, true
	}
	// A file that does not load as it is is fixed first, with its own
	// line numbers; then the new partner is checked in the whole file.
	if _, _, err := config.CheckData(path, data, lookup); err != nil {
		printProblems(c, err)
		return fmt.Errorf("%s: not changed: the config does not load as it is (%d problem%s); fix it first",
			path, problemCount(err), plural(problemCount(err)))
	}
	if _, _, err := config.CheckData(path, out, lookup); err != nil {
		printProblems(c, err)
		return fmt.Errorf("%s: not changed: with partner %q from preset %s the config would not load (%d problem%s, lines as they would be)",
			path, id, p.Name, problemCount(err), plural(problemCount(err)))
	}
	if err := writeFileAtomic(path, out); err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%s: added partner %q (%s, preset %s); the config loads\n", path, id, p.Vendor, p.Name)
	var todo []string
	for _, name := range block.Env {
		if slices.Contains(unset, name) {
			todo = append(todo, fmt.Sprintf("set the environment variable %s before the workers start (the partner's %s)", name, secretOf(p, id, name)))
		}
	}
	todo = append(todo, p.Notes...)
	todo = append(todo, fmt.Sprintf("events: the partner hears every event attributed to %q; list the ones it wants under events:", id))
	todo = append(todo, fmt.Sprintf("check the request: postback partners render --partner %s --event FILE", id))
	fmt.Fprintln(w, "still to do:")
	for _, t := range todo {
		fmt.Fprintf(w, "  - %s\n", t)
	}
	return nil
}

func printProblems(c *cli.Context, err error) {
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, pr := range cerr.Problems {
			fmt.Fprintln(c.App.Writer, pr)
		}
		return
	}
	fmt.Fprintln(c.App.Writer, err)
}

// secretOf names the setting an environment variable stands for.
func secretOf(p *presets.Preset, id, env string) string {
	for _, s := range p.Settings {
		if s.Secret && presets.EnvName(id, s.Key) == env {
			return s.Description
		}
	}
	return "secret"
}

func problemCount(err error) int {
	var cerr *config.Error
	if errors.As(err, &cerr) {
		return len(cerr.Problems)
	}
	return 1
}

// writeFileAtomic replaces path with data, keeping its mode: a crash
// leaves the old file or the new one, never half of it.
func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".postback-add-*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}
