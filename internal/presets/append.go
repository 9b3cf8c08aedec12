package presets

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrPartnerExists is Append's answer for an id the file already has.
var ErrPartnerExists = errors.New("a partner with this id is already in the config")

// Append returns config file data with block added as the last entry of
// its partners: list. Every byte outside the new entry is kept as it was
// (comments, order, spacing): the entry is spliced into the text after the
// list's last entry, its "-" at the list's column and its keys two
// columns right of it, rather than the whole file re-encoded. A file with no partners: key gets one at its
// end. It returns ErrPartnerExists when the id is taken.
func Append(data []byte, block *yaml.Node) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	id := blockID(block)
	var root *yaml.Node
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if root != nil && root.Kind != yaml.MappingNode {
		return nil, errors.New("the config is not a mapping of sections")
	}
	if root != nil && root.Style&yaml.FlowStyle != 0 {
		return nil, errors.New("the config is written in flow style ({…}); write it as a block mapping to add to it")
	}
	lines := splitLines(data)
	var key, seq, next *yaml.Node
	if root != nil {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "partners" {
				key, seq = root.Content[i], root.Content[i+1]
				if i+2 < len(root.Content) {
					next = root.Content[i+2]
				}
			}
		}
	}
	switch {
	case key == nil:
		// No partners: a new section at the end.
		text, err := encodeItem(block, 2)
		if err != nil {
			return nil, err
		}
		out := append([]byte{}, data...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, "partners:\n"...)
		return append(out, text...), nil
	case seq.Kind == yaml.ScalarNode && seq.Tag == "!!null":
		// partners: with no entries: the entry goes on the lines after it.
		text, err := encodeItem(block, key.Column-1+2)
		if err != nil {
			return nil, err
		}
		return splice(lines, key.Line, text, false), nil
	case seq.Kind != yaml.SequenceNode:
		return nil, errors.New("partners: is not a list")
	case seq.Style&yaml.FlowStyle != 0:
		return nil, errors.New("partners: is written in flow style ([…]); write it as a block list (- id: …) to add to it")
	}
	for _, p := range seq.Content {
		if blockID(p) == id {
			return nil, fmt.Errorf("partner %q: %w (line %d)", id, ErrPartnerExists, p.Line)
		}
	}
	if len(seq.Content) == 0 {
		return nil, errors.New("partners: is an empty list")
	}
	last := seq.Content[len(seq.Content)-1]
	text, err := encodeItem(block, seq.Column-1)
	if err != nil {
		return nil, err
	}
	// The list ends where the next section starts, less the blank lines
	// and comments at or left of the sections' indentation, which belong
	// to that next section (or to the end of the file).
	end := len(lines) // 0-based index of the line the entry goes before
	if next != nil {
		end = next.Line - 1
	}
	rootIndent := key.Column - 1
	for end > last.Line {
		l := lines[end-1]
		t := strings.TrimLeft(l, " \t")
		trimmed := strings.TrimRight(t, "\r\n")
		if trimmed != "" && !(strings.HasPrefix(trimmed, "#") && len(l)-len(t) <= rootIndent) {
			break
		}
		end--
	}
	// Entries separated by blank lines get one before the new entry too.
	gap := last.Line >= 2 && strings.TrimSpace(lines[last.Line-2]) == "" && len(seq.Content) > 1
	return splice(lines, end, text, gap), nil
}

// splice inserts text after the first n lines.
func splice(lines []string, n int, text []byte, gap bool) []byte {
	var b bytes.Buffer
	for _, l := range lines[:n] {
		b.WriteString(l)
	}
	if n > 0 && !strings.HasSuffix(lines[n-1], "\n") {
		b.WriteByte('\n')
	}
	if gap {
		b.WriteByte('\n')
	}
	b.Write(text)
	for _, l := range lines[n:] {
		b.WriteString(l)
	}
	return b.Bytes()
}

// splitLines splits data after each "\n", keeping it.
func splitLines(data []byte) []string {
	s := string(data)
	var out []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

// encodeItem lays block out as one entry of a block list whose "-" is at
// column dash (0-based). (yaml's encoder indents a list's entries by two
// whatever its SetIndent says.)
func encodeItem(block *yaml.Node, dash int) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	seq := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{block}}
	if err := enc.Encode(seq); err != nil {
		return nil, fmt.Errorf("encode the partner: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode the partner: %w", err)
	}
	pad := strings.Repeat(" ", dash)
	var out bytes.Buffer
	for _, l := range splitLines(b.Bytes()) {
		if strings.TrimSpace(l) != "" {
			out.WriteString(pad)
		}
		out.WriteString(l)
	}
	return out.Bytes(), nil
}

// blockID is the id: of a partner mapping, or "".
func blockID(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" {
			return n.Content[i+1].Value
		}
	}
	return ""
}
