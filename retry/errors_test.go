package retry_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/retry"
)

func TestAfter(t *testing.T) {
	t.Parallel()

	cause := errors.New("HTTP 503")
	err := fmt.Errorf("deliver dlv_1: %w", retry.After(30*time.Second, cause))
	require.EqualError(t, err, "deliver dlv_1: retry in 30s: HTTP 503")
	require.ErrorIs(t, err, cause)

	d, deferral, ok := retry.DelayOf(err)
	require.True(t, ok)
	require.False(t, deferral)
	require.Equal(t, 30*time.Second, d)
}

func TestDefer(t *testing.T) {
	t.Parallel()

	err := retry.Defer(-time.Second, nil)
	require.EqualError(t, err, "defer in 0s")
	var de *retry.DelayError
	require.ErrorAs(t, err, &de)
	require.Equal(t, retry.DelayError{Delay: 0, Deferral: true}, *de)

	d, deferral, ok := retry.DelayOf(retry.Defer(time.Second, errors.New("rate limited")))
	require.True(t, ok)
	require.True(t, deferral)
	require.Equal(t, time.Second, d)
}

func TestDelayOf(t *testing.T) {
	t.Parallel()

	for _, err := range []error{nil, errors.New("boom")} {
		d, deferral, ok := retry.DelayOf(err)
		require.False(t, ok)
		require.False(t, deferral)
		require.Zero(t, d)
	}
}
