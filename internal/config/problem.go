package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong in a config file.
type Problem struct {
	File    string
	Line    int // 1-based; 0 when unknown
	Column  int // 1-based; 0 when unknown
	Partner string
	Field   string // dotted path, "url", "retry.max_attempts"
	Msg     string
	// Warning marks a risky setting that does not stop the load.
	Warning bool
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Partner != "" {
		fmt.Fprintf(&b, "partner %q: ", p.Partner)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is a config that failed to load: every problem found, in file order.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
