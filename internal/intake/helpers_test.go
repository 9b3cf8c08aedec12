package intake_test

import "strings"

// strictYAML is yaml, a config whose api section comes first, with
// api.strict set.
func strictYAML(yaml string) string {
	return strings.Replace(yaml, "api:\n", "api:\n  strict: true\n", 1)
}
