package ops

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNeedles_FindAndRedact(t *testing.T) {
	t.Parallel()
	n := newNeedles()
	n.add("u1", "a@example.com")
	s := sha256.Sum256([]byte("a@example.com"))
	m := md5.Sum([]byte("A@EXAMPLE.COM"))
	h, hm := hex.EncodeToString(s[:]), hex.EncodeToString(m[:])

	require.True(t, n.inURL("https://p.example/c?u=u1&x=1"), "a short id, as a whole value")
	require.False(t, n.inURL("https://p.example/c?u=u10&x=1"), "not inside another")
	require.True(t, n.inURL("https://p.example/u/u1/c"), "a path segment")
	require.True(t, n.inURL("https://p.example/c?em=a%40example.com"))
	require.True(t, n.inURL("https://p.example/c?h="+h))
	require.True(t, n.inText(`{"echo":"`+hm+`"}`), "an upper-case md5, in hex")
	require.False(t, n.inText("nothing here"))
	require.False(t, n.inText("b.a@example.com.org"), "not inside a longer identifier")
	require.True(t, n.inText("to a@example.com."), "a full stop after it ends it")

	require.Equal(t, "https://p.example/erased/c?u=&h=&c=", n.redactURL("https://p.example/u1/c?u=u1&h="+h+"&c=winter#frag"))
	require.Equal(t, `Get "https://p.example/c?em=&c=": timeout, erased`,
		n.redactText(`Get "https://p.example/c?em=a%40example.com&c=w": timeout, `+h))
}
