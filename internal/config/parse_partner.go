package config

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/postbackhq/postback/internal/signing"
	"github.com/postbackhq/postback/retry"
	"github.com/postbackhq/postback/templates"
)

var (
	partnerIDRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)
	eventNameRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	headerRE    = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// sendOnly lists the partner keys that only sending needs, which an
// intake-only load does not read.
var sendOnly = map[string]bool{"url": true, "headers": true, "body": true, "content_type": true, "signing": true, "success": true, "responses": true}

// partner compiles one entry of `partners:`; nil when it has no usable id.
func (l *loader) partner(n *yaml.Node, index int) *Partner {
	if n.Kind != yaml.MappingNode {
		l.errf(n, "", fmt.Sprintf("partners[%d]", index), "want a mapping")
		return nil
	}
	p := &Partner{Enabled: true, Method: http.MethodGet}
	// The id names the partner in every other message: read it first.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" {
			id, _ := l.str(n.Content[i+1], "", fmt.Sprintf("partners[%d].id", index))
			if !partnerIDRE.MatchString(id) {
				l.errf(n.Content[i+1], "", fmt.Sprintf("partners[%d].id", index), "%q must match [a-z0-9_-]{1,64}", id)
				return nil
			}
			p.ID = id
		}
	}
	if p.ID == "" {
		l.errf(n, "", fmt.Sprintf("partners[%d]", index), "id: required")
		return nil
	}
	src := &partnerSource{}
	l.remember(p.ID, "", n)
	l.mapping(n, p.ID, "", func(key string, k, v *yaml.Node) {
		if l.intakeOnly && sendOnly[key] {
			return
		}
		l.partnerKey(p, src, key, k, v)
	})
	l.compile(n, p, src)
	l.checkLifecycle(n, p)
	return p
}

// partnerSource is what a partner's keys leave to compile once all are
// read: the templates (content_type decides the body's escaping), the
// retry policy and the success rule.
type partnerSource struct {
	urlNode, bodyNode, ctNode *yaml.Node
	urlSrc, bodySrc           string
	headerNodes               []*yaml.Node
	rawHeaders                [][2]string
	retryPolicy               retry.Policy
	successStatus             []string
	bodyNotMatch              string
}

// partnerKey reads one key of a partner's mapping into p, or into src
// what must wait for the others.
func (l *loader) partnerKey(p *Partner, src *partnerSource, key string, k, v *yaml.Node) {
	id := p.ID
	switch key {
	case "id":
	case "enabled":
		p.Enabled = l.boolean(v, id, key)
	case "events":
		p.Events = l.strs(v, id, key)
		for i, e := range p.Events {
			if !eventNameRE.MatchString(e) {
				l.errf(v.Content[i], id, key, "%q is not an event name ([a-z0-9_]{1,64})", e)
			}
		}
	case "match":
		l.remember(id, key, v)
		s, _ := l.str(v, id, key)
		switch s {
		case "attributed", "":
			p.Match = MatchAttributed
		case "all":
			p.Match = MatchAll
		default:
			l.errf(v, id, key, "%q: want attributed or all", s)
		}
	case "when":
		p.When = l.when(v, id, key)
	case "require":
		for i, name := range l.strs(v, id, key) {
			r, err := requirement(name)
			if err != nil {
				l.errf(v.Content[i], id, key, "%v", err)
				continue
			}
			p.Require = append(p.Require, r)
		}
	case "method":
		s, _ := l.str(v, id, key)
		s = strings.ToUpper(s)
		if s != http.MethodGet && s != http.MethodPost && s != http.MethodPut {
			l.errf(v, id, key, "%q: want GET, POST or PUT", s)
		}
		p.Method = s
	case "url":
		l.remember(id, "url", v)
		src.urlNode = v
		src.urlSrc, _ = l.str(v, id, key)
	case "headers":
		l.mapping(v, id, key, func(name string, hk, hv *yaml.Node) {
			if !headerRE.MatchString(name) {
				l.errf(hk, id, "headers", "%q is not a valid header name", name)
				return
			}
			val, ok := l.str(hv, id, "headers."+name)
			if ok {
				src.headerNodes = append(src.headerNodes, hv)
				src.rawHeaders = append(src.rawHeaders, [2]string{http.CanonicalHeaderKey(name), val})
			}
		})
	case "body":
		src.bodyNode = v
		src.bodySrc, _ = l.str(v, id, key)
	case "content_type":
		src.ctNode = v
		p.ContentType, _ = l.str(v, id, key)
	case "signing":
		l.signing(v, p)
	case "timeout":
		p.Timeout = l.duration(v, id, key)
	case "retry":
		l.remember(id, "retry", v)
		src.retryPolicy = l.retry(v, id)
	case "rate_limit":
		s, ok := l.str(v, id, key)
		if ok {
			rl, err := parseRate(s)
			if err != nil {
				l.errf(v, id, key, "%v", err)
			}
			p.RateLimit = rl
		}
	case "concurrency":
		p.Concurrency = l.integer(v, id, key, 0)
	case "success":
		l.success(v, id, src)
	case "responses":
		l.responses(v, p)
	case "propagate_trace":
		p.PropagateTrace = l.propagateTrace(v, id)
	case "privacy":
		l.mapping(v, id, key, func(pk string, pkn, pv *yaml.Node) {
			if pk != "require_consent" {
				l.errf(pkn, id, "privacy."+pk, "unknown key (want require_consent)")
				return
			}
			p.RequireConsent = l.boolean(pv, id, "privacy.require_consent")
		})
	case "auto_pause":
		l.autoPause(v, p)
	case "order_by", "delay", "cancel_on_reject", "window", "dedup":
		l.lifecycleKey(p, key, v)
	default:
		if s, ok := templates.Suggest(key, partnerKeyNames); ok {
			l.errf(k, id, key, "unknown key (did you mean %s?)", s)
			return
		}
		l.errf(k, id, key, "unknown key")
	}
}

// success reads a partner's success: rule into src (compiled last).
func (l *loader) success(v *yaml.Node, id string, src *partnerSource) {
	l.mapping(v, id, "success", func(sk string, skn, sv *yaml.Node) {
		switch sk {
		case "status":
			nodes := []*yaml.Node{sv}
			if sv.Kind == yaml.ScalarNode {
				s, _ := l.str(sv, id, "success.status")
				src.successStatus = []string{s}
			} else {
				src.successStatus = l.strs(sv, id, "success.status")
				nodes = sv.Content
			}
			for i, st := range src.successStatus {
				if _, err := retry.ParseSuccess([]string{st}, ""); err != nil && i < len(nodes) {
					l.fieldErr(nodes[i], id, err)
				}
			}
		case "body_not_match":
			src.bodyNotMatch, _ = l.str(sv, id, "success.body_not_match")
			if _, err := retry.ParseSuccess(nil, src.bodyNotMatch); err != nil {
				l.fieldErr(sv, id, err)
			}
		default:
			l.errf(skn, id, "success."+sk, "unknown key (want status or body_not_match)")
		}
	})
}

// when compiles a partner's when: condition; nil when there is none or
// it does not compile (the problem is recorded).
func (l *loader) when(v *yaml.Node, id, key string) *Condition {
	s, ok := l.str(v, id, key)
	if !ok || s == "" {
		return nil
	}
	c, err := CompileCondition(s)
	var ce *ConditionError
	if errors.As(err, &ce) {
		line, col := l.position(v, s, offsetOf(s, ce.Line, ce.Column))
		l.errAt(line, col, id, key, ce.Msg)
		return nil
	}
	return c
}

// compile builds p's templates, retry policy and success rule from what
// its keys left in src.
func (l *loader) compile(n *yaml.Node, p *Partner, src *partnerSource) {
	id := p.ID
	switch {
	case l.intakeOnly: // how to send is not read
	case src.urlNode == nil:
		l.errf(n, id, "url", "required")
	default:
		p.URL = l.template(src.urlNode, src.urlSrc, id, "url", templates.ContextURL)
	}
	for i, h := range src.rawHeaders {
		t := l.template(src.headerNodes[i], h[1], id, "headers."+h[0], templates.ContextHeader)
		p.Headers = append(p.Headers, Header{Name: h[0], Value: t})
	}
	if src.bodyNode != nil {
		if p.Method == http.MethodGet {
			l.errf(src.bodyNode, id, "body", "a GET request has no body; use method POST or PUT")
		}
		ctx := templates.ContextJSON
		switch ct := strings.ToLower(p.ContentType); {
		case ct == "":
			p.ContentType = "application/json"
		case strings.HasPrefix(ct, "application/json"):
		case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
			ctx = templates.ContextForm
		case strings.HasPrefix(ct, "text/plain"):
			ctx = templates.ContextText
		default:
			l.errf(src.ctNode, id, "content_type", "%q: want application/json, application/x-www-form-urlencoded or text/plain", p.ContentType)
			ctx = templates.ContextText // still check its macros, not its JSON
		}
		p.Body = l.template(src.bodyNode, src.bodySrc, id, "body", ctx)
	}

	p.Retry = src.retryPolicy.WithDefaults()
	if err := p.Retry.Validate(); err != nil {
		// One line per field, "retry.max_interval: must be ...": place
		// each at its key's value, or at retry: when the value is a default.
		for _, line := range strings.Split(err.Error(), "\n") {
			field, msg, _ := strings.Cut(line, ": ")
			at := l.node(id, field, l.node(id, "retry", n))
			if l.nodes[id+"\x00"+field] == nil && field != "retry" {
				msg += " (" + strings.TrimPrefix(field, "retry.") + " not set: its default applies)"
			}
			l.errf(at, id, field, "%s", msg)
		}
	}
	// Each status and the regexp were checked, and placed, as they were read.
	if s, err := retry.ParseSuccess(src.successStatus, src.bodyNotMatch); err == nil {
		p.Success = s.WithResponses(p.Responses)
	}
}

// fieldErr reports an error whose text starts with the field it is about
// ("success.status: ..."), as that field's problem.
func (l *loader) fieldErr(n *yaml.Node, partner string, err error) {
	field, msg, ok := strings.Cut(err.Error(), ": ")
	if !ok || strings.ContainsAny(field, " \"") {
		field, msg = "", err.Error()
	}
	l.errf(n, partner, field, "%s", msg)
}

// template parses src, reporting an error at its place in the file.
func (l *loader) template(n *yaml.Node, src, partner, field string, ctx templates.Context) *templates.Template {
	t, err := templates.Parse(src, ctx)
	if err == nil {
		return t
	}
	tes := templates.Errors(err)
	if len(tes) == 0 {
		l.errf(n, partner, field, "%v", err)
	}
	for _, te := range tes {
		off := te.Offset
		if src != n.Value { // ${env:...} expanded: offsets no longer match the file
			off = 0
		}
		line, col := l.position(n, n.Value, off)
		l.errAt(line, col, partner, field, te.Msg)
	}
	return nil
}

// offsetOf converts a 1-based line and column inside s to a byte offset.
func offsetOf(s string, line, col int) int {
	off := 0
	for i := 1; i < line; i++ {
		j := strings.IndexByte(s[off:], '\n')
		if j < 0 {
			break
		}
		off += j + 1
	}
	return min(off+max(col-1, 0), len(s))
}

func requirement(name string) (Requirement, error) {
	if key, ok := strings.CutPrefix(name, "params."); ok && key != "" {
		if !templates.IsParamKey(key) {
			return Requirement{}, fmt.Errorf("%q: no event can carry this key (params keys are [A-Za-z0-9_.-]{1,64})", name)
		}
		return Requirement{Param: key}, nil
	}
	f, ok := templates.FieldByName(name)
	if !ok {
		return Requirement{}, fmt.Errorf("unknown macro %q", name)
	}
	return Requirement{Field: f}, nil
}

func (l *loader) signing(n *yaml.Node, p *Partner) {
	var secrets []string
	var secretsNode *yaml.Node
	l.mapping(n, p.ID, "signing", func(key string, k, v *yaml.Node) {
		switch key {
		case "scheme":
			s, _ := l.str(v, p.ID, "signing.scheme")
			if s != "standard-webhooks" {
				l.errf(v, p.ID, "signing.scheme", "%q: want standard-webhooks", s)
			}
		case "secrets":
			l.remember(p.ID, "signing.secrets", v)
			secretsNode = v
			secrets = l.strs(v, p.ID, "signing.secrets")
		default:
			l.errf(k, p.ID, "signing."+key, "unknown key (want scheme or secrets)")
		}
	})
	if secretsNode == nil {
		l.errf(n, p.ID, "signing.secrets", "required: at least one secret")
		return
	}
	s, err := signing.NewSigner(secrets)
	if err != nil {
		l.errf(secretsNode, p.ID, "signing.secrets", "%v", err)
		return
	}
	p.Signer = s
}

func (l *loader) retry(n *yaml.Node, id string) retry.Policy {
	var p retry.Policy
	l.mapping(n, id, "retry", func(key string, k, v *yaml.Node) {
		f := "retry." + key
		l.remember(id, f, v)
		switch key {
		case "max_attempts":
			p.MaxAttempts = l.integer(v, id, f, 1)
		case "max_age":
			p.MaxAge = l.duration(v, id, f)
		case "initial_interval":
			p.InitialInterval = l.duration(v, id, f)
		case "max_interval":
			p.MaxInterval = l.duration(v, id, f)
		case "multiplier", "jitter":
			s, _ := l.str(v, id, f)
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				l.errf(v, id, f, "%q is not a number", s)
				return
			}
			if key == "multiplier" {
				p.Multiplier = x
			} else if x == 0 {
				p.Jitter = retry.NoJitter
			} else {
				p.Jitter = x
			}
		default:
			l.errf(k, id, f, "unknown key (want max_attempts, max_age, initial_interval, max_interval, multiplier or jitter)")
		}
	})
	return p
}

// parseRate reads "100/s", "6000/m", "10/1s" or "5/100ms".
func parseRate(s string) (RateLimit, error) {
	n, per, ok := strings.Cut(s, "/")
	reqs, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || reqs < 1 {
		return RateLimit{}, fmt.Errorf("%q: want requests per period like 100/s, 6000/m or 10/500ms", s)
	}
	var d time.Duration
	switch per = strings.TrimSpace(per); per {
	case "s":
		d = time.Second
	case "m":
		d = time.Minute
	case "h":
		d = time.Hour
	default:
		d, err = time.ParseDuration(per)
		if err != nil || d <= 0 {
			return RateLimit{}, fmt.Errorf("%q: want requests per period like 100/s, 6000/m or 10/500ms", s)
		}
	}
	return RateLimit{Requests: reqs, Per: d}, nil
}
