package templates

import "strconv"

// Error is a parse error. Offset is the byte offset of the problem inside
// the template source, so that config loading can report file:line:col.
type Error struct {
	Offset int
	Msg    string
}

// Error returns Msg alone; the caller prefixes the position.
func (e *Error) Error() string { return e.Msg }

// RenderError is an error of one render: a value a filter cannot read (cents
// of "abc") or that the context must refuse (a line break in a header). The
// delivery is then dead-lettered with reason "render" rather than sent
// wrong.
type RenderError struct {
	Offset int    // byte offset of the macro in the template source
	Macro  string // the macro as written, like {revenue|cents}
	Msg    string
}

// Error returns "{macro}: message".
func (e *RenderError) Error() string { return e.Macro + ": " + e.Msg }

// Errors returns the *Error values in err, a Parse error: one, or several
// joined. Other errors give nil.
func Errors(err error) []*Error {
	var out []*Error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	if te, ok := err.(*Error); ok {
		out = append(out, te)
	}
	return out
}

func errorf(offset int, msg string) *Error { return &Error{Offset: offset, Msg: msg} }

// quoteValue quotes a value for an error message, cut to a readable length.
func quoteValue(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

// suggest returns the candidate closest to name by edit distance when it is
// at most 2 edits away (and closer than the name's own length, so that
// "ab" does not suggest "ip").
func suggest(name string, candidates []string) (string, bool) {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := levenshtein(name, c); d < bestD && d < len(name) {
			best, bestD = c, d
		}
	}
	return best, best != ""
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // long names are never typos of ours; bound the work
	}
	var rowBuf [65]int
	row := rowBuf[:len(b)+1]
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		prev := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if lower(a[i-1]) == lower(b[j-1]) {
				cost = 0
			}
			cur := min(row[j]+1, row[j-1]+1, prev+cost)
			prev, row[j] = row[j], cur
		}
	}
	return row[len(b)]
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Suggest returns the candidate closest to name when it is at most two
// edits away, as unknown macros and filters are answered: for other
// names a config refuses, such as its keys.
func Suggest(name string, candidates []string) (string, bool) { return suggest(name, candidates) }
