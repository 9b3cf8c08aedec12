//go:build !race

package templates_test

const raceEnabled = false
