package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/postbackhq/postback/retry"
)

// responses reads a partner's `responses:` list: rules on the answer's
// status, body and headers, tried in order before success. Each rule is
// compiled here, so that a bad regexp or outcome stops the load with its
// place in the file.
func (l *loader) responses(v *yaml.Node, p *Partner) {
	id := p.ID
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return
	}
	if v.Kind != yaml.SequenceNode {
		l.errf(v, id, "responses", "want a list of rules like {status: [\"200\"], body_match: \"success=true\", outcome: delivered}")
		return
	}
	p.Responses = nil
	catchAll := -1 // the first rule with no condition: it matches every answer
	for i, rn := range v.Content {
		field := fmt.Sprintf("responses[%d]", i)
		var src retry.RuleSource
		nodes := map[string]*yaml.Node{}
		var statusItems []*yaml.Node
		l.mapping(rn, id, field, func(key string, k, kv *yaml.Node) {
			f := field + "." + key
			switch key {
			case "status":
				nodes[key] = kv
				if kv.Kind == yaml.ScalarNode {
					s, _ := l.str(kv, id, f)
					src.Status, statusItems = []string{s}, []*yaml.Node{kv}
				} else {
					src.Status, statusItems = l.strs(kv, id, f), kv.Content
				}
			case "body_match":
				nodes[key] = kv
				src.BodyMatch, _ = l.str(kv, id, f)
			case "header_match":
				l.mapping(kv, id, f, func(name string, hk, hv *yaml.Node) {
					if !headerRE.MatchString(name) {
						l.errf(hk, id, f, "%q is not a valid header name", name)
						return
					}
					nodes["header_match."+name] = hv
					re, _ := l.str(hv, id, f+"."+name)
					src.HeaderMatch = append(src.HeaderMatch, [2]string{name, re})
				})
			case "outcome":
				nodes[key] = kv
				src.Outcome, _ = l.str(kv, id, f)
			default:
				l.errf(k, id, f, "unknown key (want status, body_match, header_match or outcome)")
			}
		})
		if rn.Kind != yaml.MappingNode {
			continue // reported by mapping
		}
		if catchAll >= 0 {
			l.warnAt(rn, id, field, fmt.Sprintf("never used: responses[%d] before it matches every answer", catchAll))
		}
		if catchAll < 0 && len(src.Status) == 0 && src.BodyMatch == "" && len(src.HeaderMatch) == 0 {
			catchAll = i
		}
		rule, err := retry.ParseRule(i, src)
		if err == nil {
			p.Responses = append(p.Responses, rule)
			continue
		}
		re, ok := err.(*retry.RuleError)
		if !ok {
			l.errf(rn, id, field, "%v", err)
			continue
		}
		at := nodes[re.Field]
		if re.Field == "status" && re.Item < len(statusItems) {
			at = statusItems[re.Item]
		}
		if at == nil {
			l.errf(rn, id, field+"."+re.Field, "%s", re.Msg)
			continue
		}
		line, col := at.Line, at.Column
		if re.Offset > 0 && at.Kind == yaml.ScalarNode && !strings.Contains(at.Value, "${env:") {
			line, col = l.position(at, at.Value, re.Offset)
		}
		l.errAt(line, col, id, field+"."+re.Field, re.Msg)
	}
}
