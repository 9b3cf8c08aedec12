package templates

import (
	"errors"
	"slices"
	"strings"
)

// Context says where a template's output goes; it decides how each macro's
// value is escaped.
type Context uint8

// The output contexts.
const (
	// ContextURL is a whole absolute URL. Each macro is escaped by where it
	// stands: path or query. Macros in the scheme, userinfo, host, port or
	// fragment, and raw in the path, are refused at parse time; a render
	// whose path would get a "." or ".." segment from a value fails.
	ContextURL Context = iota + 1
	// ContextJSON is a JSON body. A macro inside a JSON string renders as
	// string content; outside strings a macro needs the json filter.
	ContextJSON
	// ContextForm is an application/x-www-form-urlencoded body; every macro
	// is form-escaped.
	ContextForm
	// ContextHeader is one header value; a value with a control character
	// (CR, LF, NUL…) fails the render.
	ContextHeader
	// ContextText does no escaping, for previews and tests.
	ContextText
)

var contextNames = [...]string{ContextURL: "url", ContextJSON: "json", ContextForm: "form", ContextHeader: "header", ContextText: "text"}

// String returns the context's name: url, json, form, header or text.
func (c Context) String() string {
	if c > 0 && int(c) < len(contextNames) {
		return contextNames[c]
	}
	return "Context(?)"
}

// Template is a parsed template. It is immutable: one Template serves any
// number of concurrent renders.
type Template struct {
	src    string
	ctx    Context
	nodes  []node
	fields []Field
	params []string
	path   *pathGuard // a URL with macros in its path; nil otherwise
}

// node is a literal (macro false) or a macro.
type node struct {
	macro   bool
	lit     string // literal text, {{ already turned into {
	field   Field  // 0 for a param
	param   string // the KEY of {params.KEY}
	esc     escaper
	filters []filter
	offset  int    // offset of the macro's '{' in the source
	text    string // the macro as written, for messages
}

// piece is what the lexer yields: a literal substring of the source (m nil)
// or a macro.
type piece struct {
	lit string
	off int
	m   *node
}

// Parse parses src as a template whose output goes to ctx. A failure is an
// *Error carrying its offset, or, when several macros are wrong, the
// errors.Join of one *Error per wrong macro, in order (Errors splits it):
// a config with two typos in one URL names both at once.
func Parse(src string, ctx Context) (*Template, error) {
	if ctx < ContextURL || ctx > ContextText {
		return nil, errorf(0, "invalid template context "+ctx.String())
	}
	pieces, err := lex(src)
	if err != nil {
		return nil, err
	}
	path, err := placeMacros(ctx, pieces)
	if err != nil {
		return nil, err
	}
	t := &Template{src: src, ctx: ctx, path: path}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.nodes = append(t.nodes, node{lit: lit.String()})
			lit.Reset()
		}
	}
	for _, p := range pieces {
		if p.m == nil {
			lit.WriteString(p.lit)
			continue
		}
		flush()
		t.nodes = append(t.nodes, *p.m)
		if p.m.field != 0 && !slices.Contains(t.fields, p.m.field) {
			t.fields = append(t.fields, p.m.field)
		}
		if p.m.field == 0 && !slices.Contains(t.params, p.m.param) {
			t.params = append(t.params, p.m.param)
		}
	}
	flush()
	return t, nil
}

// MustParse is Parse that panics on error, for templates fixed in code.
func MustParse(src string, ctx Context) *Template {
	t, err := Parse(src, ctx)
	if err != nil {
		panic("templates: " + ctx.String() + " template " + quoteValue(src) + ": " + err.Error())
	}
	return t
}

// Source returns the template as written.
func (t *Template) Source() string { return t.src }

// Context returns the context the template was parsed for.
func (t *Template) Context() Context { return t.ctx }

// Fields returns the fields the template references, in order of first
// use, for require checks and docs. The slice is the caller's.
func (t *Template) Fields() []Field { return slices.Clone(t.fields) }

// Params returns the KEYs of the {params.KEY} macros, in order of first use.
// The slice is the caller's.
func (t *Template) Params() []string { return slices.Clone(t.params) }

// lex splits src into literal pieces and parsed macros. A '{' opens a macro
// only when a letter follows; "{{" is a literal '{'; any other brace is
// literal.
func lex(src string) ([]piece, error) {
	var pieces []piece
	var errs []error
	start := 0
	for i := 0; i < len(src); {
		if src[i] != '{' || i+1 == len(src) {
			i++
			continue
		}
		switch c := src[i+1]; {
		case c == '{':
			if start < i {
				pieces = append(pieces, piece{lit: src[start:i], off: start})
			}
			pieces = append(pieces, piece{lit: "{", off: i})
			i += 2
			start = i
		case isLetter(c):
			if start < i {
				pieces = append(pieces, piece{lit: src[start:i], off: start})
			}
			m, end, err := parseMacro(src, i)
			if err != nil {
				errs = append(errs, err)
				if end == 0 { // unclosed: nothing after it can be read
					return nil, joinErrors(errs)
				}
				i, start = end, end
				continue
			}
			pieces = append(pieces, piece{m: m, off: i})
			i = end
			start = i
		default:
			i++
		}
	}
	if start < len(src) {
		pieces = append(pieces, piece{lit: src[start:], off: start})
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return pieces, nil
}

// joinErrors is errs[0] alone, or all of errs joined.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// parseMacro parses the macro whose '{' is at src[open] and returns it with
// the offset just past its '}'. A macro that is closed but wrong (an
// unknown name or filter) returns its error with that offset too, so the
// lexer can go on to the next one; an unclosed one returns 0.
func parseMacro(src string, open int) (*node, int, error) {
	i := open + 1
	for i < len(src) && isNameByte(src[i]) {
		i++
	}
	name := src[open+1 : i]
	unclosed := func(at int) error {
		text := src[open:at]
		if len(text) > 48 {
			text = text[:48] + "…"
		}
		msg := "unclosed macro " + text
		if at < len(src) {
			msg += " (" + quoteValue(src[at:at+1]) + " where \"|\" or \"}\" should be)"
		}
		return errorf(open, msg)
	}
	type rawFilter struct {
		name, arg   string
		hasArg      bool
		off, argOff int
	}
	var raws []rawFilter
	for {
		if i == len(src) || (src[i] != '|' && src[i] != '}') {
			return nil, 0, unclosed(i)
		}
		if src[i] == '}' {
			break
		}
		i++ // past '|'
		f := rawFilter{off: i}
		for i < len(src) && isNameByte(src[i]) {
			i++
		}
		f.name = src[f.off:i]
		if i < len(src) && src[i] == ':' {
			i++
			f.hasArg, f.argOff = true, i
			for i < len(src) && src[i] != '|' && src[i] != '}' {
				i++
			}
			f.arg = src[f.argOff:i]
		}
		raws = append(raws, f)
	}
	end := i + 1
	m := &node{macro: true, offset: open, text: src[open:end]}
	if err := resolveName(m, name); err != nil {
		return nil, end, err
	}
	for k, r := range raws {
		if r.name == "" {
			return nil, end, errorf(r.off, "empty filter in "+m.text)
		}
		// An argument is literal text up to the next '|' or '}', so in
		// {revenue|default:{click_id}} it would be the text "{click_id"
		// and the last '}' a stray literal: refuse what looks like a macro
		// (or a "{{") rather than render that.
		if j := strings.IndexByte(r.arg, '{'); j >= 0 {
			if j+1 < len(r.arg) && isLetter(r.arg[j+1]) {
				return nil, end, errorf(r.argOff+j, "a macro cannot be used inside a filter argument; filter arguments are literal")
			}
			return nil, end, errorf(r.argOff+j, "a filter argument cannot contain \"{\"; filter arguments are literal and end at \"|\" or \"}\"")
		}
		f, err := parseFilter(m, k, r.name, r.arg, r.hasArg, r.off)
		if err != nil {
			return nil, end, err
		}
		if (f.kind == filterJSON || f.kind == filterRaw) && k != len(raws)-1 {
			return nil, end, errorf(r.off, "filter \""+r.name+"\" must be the last one in "+m.text)
		}
		m.filters = append(m.filters, f)
	}
	return m, end, nil
}

const paramsPrefix = "params."

// MaxParamKey is the longest key an event's params may have.
const MaxParamKey = 64

// IsParamKey reports whether s can be a key of an event's params:
// [A-Za-z0-9_.-]{1,64}. A macro or requirement naming any other key could
// never have a value.
func IsParamKey(s string) bool {
	if len(s) < 1 || len(s) > MaxParamKey {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// resolveName sets the field or param of m, or explains the unknown name.
func resolveName(m *node, name string) error {
	if key, ok := strings.CutPrefix(name, paramsPrefix); ok {
		if key == "" {
			return errorf(m.offset, "macro "+m.text+" needs a key, like {params.level}")
		}
		if !IsParamKey(key) {
			return errorf(m.offset, "macro "+m.text+": no event can carry this key (params keys are [A-Za-z0-9_.-]{1,64})")
		}
		m.param = key
		return nil
	}
	if f, ok := FieldByName(name); ok {
		m.field = f
		return nil
	}
	msg := "unknown macro {" + name + "}"
	if head, key, ok := strings.Cut(name, "."); ok && key != "" && levenshtein(head, "params") <= 2 {
		msg += " (did you mean {" + paramsPrefix + key + "}?)"
	} else if s, ok := suggest(name, fieldNames[1:]); ok {
		msg += " (did you mean {" + s + "}?)"
	} else if name == "params" {
		msg += " (free params are written {params.KEY})"
	}
	return errorf(m.offset, msg)
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// isNameByte reports the bytes of macro names, params keys and filter names.
func isNameByte(c byte) bool {
	return isLetter(c) || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}
