package config

import (
	"fmt"
	"net/url"

	"go.yaml.in/yaml/v3"

	"github.com/postbackhq/postback/internal/signing"
)

// OpsConfig is the `ops:` section: where postback tells operators about
// partners failing, recovering, paused and resumed, and about dead letters.
type OpsConfig struct {
	// Webhooks receive the operational events, signed with Standard
	// Webhooks. Default none: no events are sent.
	Webhooks []OpsWebhook
}

// OpsWebhook is one receiver of operational events.
type OpsWebhook struct {
	URL string
	// Signer signs each event with the webhook's secrets (at least one).
	Signer *signing.Signer
}

// AutoPause is a partner's `auto_pause:` setting.
type AutoPause struct {
	// ConsecutiveFailures is how many failed attempts in a row, counted
	// across every worker, pause the partner. Default 0: never.
	ConsecutiveFailures int
}

// ops reads the `ops:` section. An intake-only load skips it: producers
// send no operational events and need none of its secrets.
func (l *loader) ops(n *yaml.Node, c *OpsConfig) {
	if l.intakeOnly {
		return
	}
	l.mapping(n, "", "ops", func(key string, k, v *yaml.Node) {
		switch key {
		case "webhooks":
			if v.Kind != yaml.SequenceNode {
				l.errf(v, "", "ops.webhooks", "want a list of {url, secrets}")
				return
			}
			for i, wn := range v.Content {
				if w, ok := l.opsWebhook(wn, fmt.Sprintf("ops.webhooks[%d]", i)); ok {
					c.Webhooks = append(c.Webhooks, w)
				}
			}
		default:
			l.errf(k, "", "ops."+key, "unknown key (want webhooks)")
		}
	})
}

func (l *loader) opsWebhook(n *yaml.Node, field string) (OpsWebhook, bool) {
	var w OpsWebhook
	var secrets []string
	var urlNode, secretsNode *yaml.Node
	l.mapping(n, "", field, func(key string, k, v *yaml.Node) {
		switch key {
		case "url":
			urlNode = v
			w.URL, _ = l.str(v, "", field+".url")
		case "secrets":
			secretsNode = v
			secrets = l.strs(v, "", field+".secrets")
		default:
			l.errf(k, "", field+"."+key, "unknown key (want url or secrets)")
		}
	})
	if n.Kind != yaml.MappingNode {
		return w, false
	}
	ok := true
	if urlNode == nil {
		l.errf(n, "", field+".url", "required")
		ok = false
	} else if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		l.errf(urlNode, "", field+".url", "%q: want an absolute http:// or https:// URL", w.URL)
		ok = false
	}
	if secretsNode == nil {
		l.errf(n, "", field+".secrets", "required: at least one secret (events are signed like partner postbacks)")
		return w, false
	}
	if secretsNode.Kind == yaml.SequenceNode && len(secrets) < len(secretsNode.Content) {
		return w, false // a secret's ${env:…} is unset: reported already
	}
	s, err := signing.NewSigner(secrets)
	if err != nil {
		l.errf(secretsNode, "", field+".secrets", "%v", err)
		return w, false
	}
	w.Signer = s
	return w, ok
}

// autoPause reads a partner's `auto_pause:` setting.
func (l *loader) autoPause(v *yaml.Node, p *Partner) {
	l.mapping(v, p.ID, "auto_pause", func(key string, k, av *yaml.Node) {
		if key != "consecutive_failures" {
			l.errf(k, p.ID, "auto_pause."+key, "unknown key (want consecutive_failures)")
			return
		}
		p.AutoPause.ConsecutiveFailures = l.integer(av, p.ID, "auto_pause.consecutive_failures", 1)
	})
}
