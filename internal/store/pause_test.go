package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/redistest"
	"github.com/postbackhq/postback/internal/store"
)

func TestStore_PauseResume(t *testing.T) {
	t.Parallel()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	s, ctx := store.New(rdb), context.Background()
	t0 := time.UnixMilli(1_700_000_000_000)

	got, err := s.Pause(ctx, "acme", "maintenance", "cli", t0)
	require.NoError(t, err)
	require.True(t, got.Since.Equal(t0))
	// A second pause keeps the first start and takes the new reason.
	got, err = s.Pause(ctx, "acme", "still down", "api", t0.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, got.Since.Equal(t0))

	ps, err := s.Paused(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]store.PartnerPause{
		"acme": {Paused: true, Since: t0, Reason: "still down", By: "api"},
	}, ps)

	was, err := s.Resume(ctx, "acme", t0.Add(time.Hour))
	require.NoError(t, err)
	require.True(t, was)
	was, err = s.Resume(ctx, "acme", t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.False(t, was)
	_, err = s.Pause(ctx, "acme", "", "cli", t0.Add(3*time.Hour))
	require.NoError(t, err)
	_, err = s.Resume(ctx, "acme", t0.Add(4*time.Hour))
	require.NoError(t, err)

	ps, err = s.Paused(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]store.PartnerPause{"acme": {Past: []store.Interval{
		{Start: t0.Add(3 * time.Hour), End: t0.Add(4 * time.Hour)},
		{Start: t0, End: t0.Add(time.Hour)},
	}}}, ps)
}

func TestStore_PausePastIsCapped(t *testing.T) {
	t.Parallel()
	rdb, err := store.OpenRedis(redistest.DB(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	s, ctx := store.New(rdb), context.Background()
	t0 := time.UnixMilli(1_700_000_000_000)
	for i := range store.PastPauses + 5 {
		at := t0.Add(time.Duration(i) * time.Minute)
		_, err := s.Pause(ctx, "acme", "", "cli", at)
		require.NoError(t, err)
		_, err = s.Resume(ctx, "acme", at.Add(time.Second))
		require.NoError(t, err)
	}
	ps, err := s.Paused(ctx)
	require.NoError(t, err)
	require.Len(t, ps["acme"].Past, store.PastPauses)
	require.True(t, ps["acme"].Past[0].Start.Equal(t0.Add((store.PastPauses+4)*time.Minute)))
}

func TestPartnerPause_During(t *testing.T) {
	t.Parallel()
	t0 := time.UnixMilli(1_700_000_000_000)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	p := store.PartnerPause{
		Paused: true, Since: at(50),
		Past: []store.Interval{{Start: at(20), End: at(30)}, {Start: at(0), End: at(10)}},
	}
	tests := []struct {
		from, to, tail int
		want           time.Duration
	}{
		{60, 70, 0, 10 * time.Minute}, // inside the pause in force
		{25, 55, 0, 10 * time.Minute}, // half a past one, the start of today's
		{5, 60, 0, 25 * time.Minute},  // part of the first, all of the second, 10 of today's
		{11, 19, 0, 0},                // between pauses
		{-10, 0, 0, 0},                // before any
		{11, 19, 5, 4 * time.Minute},  // the tail of the first
		{5, 60, 5, 35 * time.Minute},  // both tails
		{5, 60, 30, 55 * time.Minute}, // tails end where the next pause starts
	}
	for _, tt := range tests {
		got := p.During(at(tt.from), at(tt.to), time.Duration(tt.tail)*time.Minute)
		require.Equal(t, tt.want, got, "%d..%d tail %d", tt.from, tt.to, tt.tail)
	}
}
