package templates

import "sync"

// scratch is the per-render working memory: two buffers that filters write
// their results to in turn (a filter reads the previous result from one
// while it writes the other), and Render's output buffer. It is pooled, so
// a steady stream of renders allocates nothing but Render's result.
type scratch struct {
	bufs [2][]byte
	next int
	out  []byte
}

// take returns the empty buffer the next filter writes to.
func (st *scratch) take() []byte { return st.bufs[st.next][:0] }

// done records b as the next buffer's content and returns a view of it,
// valid until the filter after next writes.
func (st *scratch) done(b []byte) string {
	st.bufs[st.next] = b
	st.next ^= 1
	return unsafeString(b)
}

// maxPooled keeps one huge render from pinning its buffers in the pool.
const maxPooled = 64 << 10

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func putScratch(st *scratch) {
	for i := range st.bufs {
		if cap(st.bufs[i]) > maxPooled {
			st.bufs[i] = nil
		}
	}
	if cap(st.out) > maxPooled {
		st.out = nil
	}
	scratchPool.Put(st)
}

var noValues Values

// Append renders the template with v and appends the result to dst. It
// allocates nothing when dst has room for the result. A nil v renders
// every macro as absent. On error dst holds a partial render; do not send
// it.
func (t *Template) Append(dst []byte, v *Values) ([]byte, error) {
	var st *scratch
	dst, err := t.execute(dst, v, &st)
	if st != nil {
		putScratch(st)
	}
	return dst, err
}

// Render renders the template with v. A nil v renders every macro as
// absent. The error, if any, is a *RenderError.
func (t *Template) Render(v *Values) (string, error) {
	st := scratchPool.Get().(*scratch)
	out, err := t.execute(st.out[:0], v, &st)
	var s string
	if err == nil {
		s = string(out)
	}
	st.out = out
	putScratch(st)
	return s, err
}

// execute appends the render to dst, taking scratch from the pool into *st
// the first time a filter needs it.
func (t *Template) execute(dst []byte, v *Values, st **scratch) ([]byte, error) {
	if v == nil {
		v = &noValues
	}
	base := len(dst)
	for i := range t.nodes {
		n := &t.nodes[i]
		if !n.macro {
			dst = append(dst, n.lit...)
			continue
		}
		var s string
		if n.field != 0 {
			s = v.vals[n.field]
		} else {
			s = v.Params[n.param]
		}
		for k := range n.filters {
			if *st == nil {
				*st = scratchPool.Get().(*scratch)
			}
			out, err := n.filters[k].apply(*st, n.field, s, v)
			if err != nil {
				return dst, &RenderError{Offset: n.offset, Macro: n.text, Msg: "value " + quoteValue(s) + " " + err.Error()}
			}
			s = out
		}
		var err error
		if dst, err = appendEscaped(dst, s, n.esc); err != nil {
			return dst, &RenderError{Offset: n.offset, Macro: n.text, Msg: err.Error()}
		}
	}
	if t.path != nil {
		if err := t.path.check(dst[base:]); err != nil {
			return dst, err
		}
	}
	return dst, nil
}
