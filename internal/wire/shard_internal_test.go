package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The shards' names are where their data is: they must never change.
func TestShardName_Fixed(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"postback:1-8t", "postback:2-5d", "postback:3-10", "postback:4-jz", "postback:5-tg"},
		[]string{ShardName(1), ShardName(2), ShardName(3), ShardName(4), ShardName(5)})
	require.Equal(t, uint16(12739), keySlot("123456789"), "CRC16/XMODEM, as Redis Cluster hashes")
}

// redis-cli gives each of m masters an equal run of slots (3 masters:
// 0-5460, 5461-10922 and 10923-16383): a multiple of m shards puts as
// many on each.
func TestShardName_SpreadOverMasters(t *testing.T) {
	t.Parallel()
	for _, m := range []int{3, 6} {
		master := func(slot uint16) int { return min(int(slot)/(slots/m), m-1) }
		for _, n := range []int{m, 2 * m, 4 * m} {
			per := make([]int, m)
			per[master(keySlot("pb"))]++ // shard 0, by its {pb} keys
			if m == 3 {
				require.Equal(t, master(keySlot("pb")), master(keySlot(QueueDefault)), "shard 0's keys and queue share a master")
			}
			for k := 1; k < n; k++ {
				per[master(keySlot(ShardName(k)))]++
			}
			want := make([]int, m)
			for i := range want {
				want[i] = n / m
			}
			require.Equal(t, want, per, "%d shards on %d masters", n, m)
		}
	}
}

func TestQueueShard(t *testing.T) {
	t.Parallel()
	for k := range 40 {
		q, replay, ok := QueueShard(Queue(k))
		require.True(t, ok)
		require.False(t, replay)
		require.Equal(t, k, q)
		q, replay, ok = QueueShard(ReplayQueue(k))
		require.True(t, ok)
		require.True(t, replay)
		require.Equal(t, k, q)
	}
	require.Equal(t, "postback", Queue(0), "shard 0 keeps the queue postback always had")
	require.Equal(t, "postback_replay", ReplayQueue(0))
	for _, q := range []string{"", "postback_ops", "postback:1", "postback:1-zz", "postback:0-8t", "other"} {
		_, _, ok := QueueShard(q)
		require.False(t, ok, q)
	}
	require.Equal(t, []string{"postback", "postback_replay"}, Queues(1))
	require.Len(t, Queues(4), 8)
}

func TestShardOf(t *testing.T) {
	require.Zero(t, ShardOf("evt-1", 1))
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = ShardOf("evt-1", 1) }), "one shard costs nothing")
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = ShardOf("evt-1", 6) }))
	seen := map[int]int{}
	for i := range 4000 {
		k := ShardOf("evt-"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)), 4)
		require.Equal(t, k, ShardOf("evt-"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)), 4), "stable")
		seen[k]++
	}
	for k := range 4 {
		require.Greater(t, seen[k], 800, "spread: %v", seen)
	}
}
