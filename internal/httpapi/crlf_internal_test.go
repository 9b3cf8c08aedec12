package httpapi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A header block's end is found however the reads split it.
func TestBlockEnd_Scan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want uint8
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", blockCRLF},
		{"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nbody\n\n", blockCRLF},
		{"GET / HTTP/1.1\nHost: x\r\n\r\n", blockCRLF},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n\n\n", blockCRLF},
		{"GET / HTTP/1.1\nHost: x\n\n", blockBareLF},
		{"\nGET / HTTP/1.1\nHost: x\n\n", blockBareLF},
		{"GET / HTTP/1.1\r\nHost: x\r\n\n", blockBareLF},
		{"GET / HTTP/1.1\r\nHost: x\n\r\n", blockBareLF},
		{"GET / HTTP/1.1\r\nHost: x\r\n", blockOpen},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r", blockOpen},
	} {
		for split := range len(tc.in) + 1 {
			var e blockEnd
			e.scan([]byte(tc.in[:split]))
			e.scan([]byte(tc.in[split:]))
			require.Equal(t, tc.want, e.state, "%q split at %d", tc.in, split)
		}
		var e blockEnd
		for i := range len(tc.in) {
			e.scan([]byte{tc.in[i]})
		}
		require.Equal(t, tc.want, e.state, "%q a byte at a time", tc.in)
	}
}
