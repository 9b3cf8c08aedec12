package main

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFlagsFirst(t *testing.T) {
	t.Parallel()
	app := newApp(io.Discard, io.Discard)
	tests := []struct{ in, want string }{
		{"dlq show ID -o json", "dlq show -o json ID"},
		{"dlq show -o json ID", "dlq show -o json ID"},
		{"-c x.yaml deliveries show ID --output=json", "-c x.yaml deliveries show --output=json ID"},
		{"dlq retry A B --dry-run -p p1 C", "dlq retry --dry-run -p p1 A B C"},
		{"dlq show -- -odd -o json", "dlq show -- -odd -o json"},
		{"dlq show ID -- -o", "dlq show -- ID -o"},
		{"enqueue - -o json", "enqueue -o json -"},
		{"partners render x -p a", "partners render -p a x"},
		{"partners nope x -p a", "partners nope x -p a"},
		{"nope ID -o json", "nope ID -o json"},
		{"dlq show ID -o", "dlq show -o ID"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := flagsFirst(app, append([]string{"postback"}, strings.Fields(tt.in)...))
			require.Equal(t, append([]string{"postback"}, strings.Fields(tt.want)...), got)
		})
	}
}

func TestRun_FlagsAfterArguments(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	ids := b.deadLetters(t, 1)
	id := ids[0]
	for _, cmd := range []string{"deliveries", "dlq"} {
		before := b.run(t, cmd, "show", "-o", "json", id)
		require.Equal(t, 0, before.code, before.stderr)
		after := b.run(t, cmd, "show", id, "-o", "json")
		require.Equal(t, 0, after.code, after.stderr)
		require.Equal(t, before.stdout, after.stdout)
		require.True(t, strings.HasPrefix(after.stdout, "{"), after.stdout)
	}
}
