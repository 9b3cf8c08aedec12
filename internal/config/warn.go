package config

import (
	"net/url"
	"strings"

	"github.com/postbackhq/postback/internal/netguard"
	"go.yaml.in/yaml/v3"
)

// warnAt records a warning: a setting that loads but is risky.
func (l *loader) warnAt(n *yaml.Node, partner, field, msg string) {
	p := Problem{File: l.file, Partner: partner, Field: field, Msg: msg, Warning: true}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	l.warnings = append(l.warnings, p)
}

// warn looks for settings that load but that production should not run
// with. Called only on a config that loaded.
func (l *loader) warn(root *yaml.Node, api APIConfig, delivery DeliveryConfig, partners []*Partner) {
	if len(api.Keys) == 0 {
		l.warnAt(l.node("", "api.keys", root), "", "api.keys", "no API keys: the API refuses to start unless run with --insecure-no-auth")
	}
	if delivery.AllowPrivateNetworks {
		l.warnAt(l.node("", "delivery.allow_private_networks", root), "", "delivery.allow_private_networks",
			"the SSRF guard is off: postbacks may reach loopback, private and cloud metadata addresses; for local tests only")
	}
	for _, p := range partners {
		if p.URL != nil && strings.HasPrefix(strings.ToLower(p.URL.Source()), "http://") {
			l.warnAt(l.node(p.ID, "url", l.node(p.ID, "", nil)), p.ID, "url", "plain http:// sends conversions unencrypted; use https://")
		}
		if !delivery.AllowPrivateNetworks && p.URL != nil {
			if why := guardBlocks(p.URL.Source()); why != "" {
				l.warnAt(l.node(p.ID, "url", l.node(p.ID, "", nil)), p.ID, "url", why)
			}
		}
		if n := l.nodes[p.ID+"\x00signing.secrets"]; n != nil && n.Kind == yaml.SequenceNode {
			for _, s := range n.Content {
				if !envRE.MatchString(s.Value) {
					l.warnAt(s, p.ID, "signing.secrets", "secret written in the file; read it with ${env:NAME} instead")
				}
			}
		}
		if p.Match == MatchAll && len(p.Events) == 0 && p.When == nil {
			l.warnAt(l.node(p.ID, "match", l.node(p.ID, "", nil)), p.ID, "match", "match: all with no events and no when: every event of every app goes to this partner")
		}
	}
}

// guardBlocks says why the SSRF guard will refuse every postback to a
// partner URL whose host is written in the file, or "". The host is
// literal (no macro may be in it), so the guard's verdict on an IP
// address, or on localhost, is known at load.
func guardBlocks(src string) string {
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "host " + host + " is loopback: the SSRF guard blocks every postback to it (delivery.allow_private_networks is false)"
	}
	if err := netguard.CheckURL(u, false); err != nil {
		return err.Error() + ": the SSRF guard blocks every postback to it (delivery.allow_private_networks is false)"
	}
	return ""
}
