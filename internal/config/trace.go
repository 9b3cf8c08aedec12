package config

import "go.yaml.in/yaml/v3"

// propagateTrace reads a partner's propagate_trace: whether its requests
// carry the attempt's traceparent header.
func (l *loader) propagateTrace(v *yaml.Node, id string) bool {
	return l.boolean(v, id, "propagate_trace")
}
