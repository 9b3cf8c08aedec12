package config

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// position maps a byte offset inside a scalar's value to its line and
// column (1-based, in characters) in the file, by walking the scalar's
// source text: quoted scalars' escapes ("\t", "\u00e9", ”) and line
// folding, and block scalars' indentation. When the source cannot be
// followed (it is not where the node says), it falls back to counting from
// the node's start.
func (l *loader) position(n *yaml.Node, value string, off int) (line, col int) {
	off = min(max(off, 0), len(value))
	var ok bool
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		line, col, ok = l.blockPosition(n, off)
	default:
		line, col, ok = l.flowPosition(n, off)
	}
	if ok {
		return line, col
	}
	return n.Line, n.Column + utf8.RuneCountInString(value[:off])
}

// flowPosition follows a plain, single- or double-quoted scalar.
func (l *loader) flowPosition(n *yaml.Node, off int) (line, col int, ok bool) {
	li := n.Line - 1
	if li < 0 || li >= len(l.lines) {
		return 0, 0, false
	}
	ci, ok := byteIndex(l.lines[li], n.Column-1)
	if !ok {
		return 0, 0, false
	}
	double := n.Style == yaml.DoubleQuotedStyle
	single := n.Style == yaml.SingleQuotedStyle
	if double || single {
		ci++ // the opening quote
	}
	for v := 0; v < off; {
		if li >= len(l.lines) {
			return 0, 0, false
		}
		src := l.lines[li]
		if ci >= len(src) || (double && ci == len(src)-1 && src[ci] == '\\') {
			// A line break: folded to one space, or to one "\n" per blank
			// line that follows; an escaped break folds to nothing.
			escaped := ci < len(src)
			li++
			blank := 0
			for li < len(l.lines) && strings.TrimSpace(l.lines[li]) == "" {
				li, blank = li+1, blank+1
			}
			if li >= len(l.lines) {
				return 0, 0, false
			}
			if !escaped {
				v += max(blank, 1)
			}
			ci = len(l.lines[li]) - len(strings.TrimLeft(l.lines[li], " \t"))
			continue
		}
		c := src[ci]
		switch {
		case double && c == '\\' && ci+1 < len(src):
			w, hex := 2, 0
			switch src[ci+1] {
			case 'x':
				hex = 2
			case 'u':
				hex = 4
			case 'U':
				hex = 8
			case 'N', '_': // U+0085, U+00A0
				v += 2
			case 'L', 'P': // U+2028, U+2029
				v += 3
			default:
				v++
			}
			if hex > 0 {
				r, err := strconv.ParseUint(src[ci+2:min(ci+2+hex, len(src))], 16, 32)
				if err != nil {
					return 0, 0, false
				}
				v += max(utf8.RuneLen(rune(r)), 1)
				w += hex
			}
			ci += w
		case single && c == '\'' && ci+1 < len(src) && src[ci+1] == '\'':
			v, ci = v+1, ci+2
		default:
			v, ci = v+1, ci+1
		}
	}
	if li >= len(l.lines) {
		return 0, 0, false
	}
	ci = min(ci, len(l.lines[li]))
	return li + 1, utf8.RuneCountInString(l.lines[li][:ci]) + 1, true
}

// blockPosition follows a literal (|) or folded (>) block scalar: its
// content starts on the line after the indicator, at the indentation of
// its first non-blank line.
func (l *loader) blockPosition(n *yaml.Node, off int) (line, col int, ok bool) {
	first := n.Line // 0-based index of the line after the indicator
	indent := -1
	for i := first; i < len(l.lines); i++ {
		if t := strings.TrimLeft(l.lines[i], " "); t != "" {
			indent = len(l.lines[i]) - len(t)
			break
		}
	}
	if indent < 0 {
		return 0, 0, false
	}
	folded := n.Style == yaml.FoldedStyle
	v, blankRun := 0, 0
	for i := first; i < len(l.lines); i++ {
		src := l.lines[i]
		content := ""
		if len(src) > indent {
			content = src[indent:]
		} else if strings.TrimSpace(src) != "" {
			return 0, 0, false // dedented: past the block
		}
		if off <= v+len(content) && (content != "" || off == v) {
			return i + 1, indent + utf8.RuneCountInString(content[:off-v]) + 1, true
		}
		v += len(content)
		switch {
		case !folded:
			v++ // every line ends in "\n"
		case content == "":
			// In a folded block, the break before a run of blank lines is
			// dropped and each blank line gives one "\n".
			if blankRun > 0 {
				v++
			}
			blankRun++
		default:
			blankRun = 0
			v++ // the break: a space, or "\n" around more-indented lines
		}
	}
	return 0, 0, false
}

// byteIndex returns the byte index of the rune at index r in s.
func byteIndex(s string, r int) (int, bool) {
	for i := range s {
		if r == 0 {
			return i, true
		}
		r--
	}
	if r == 0 {
		return len(s), true
	}
	return 0, false
}
