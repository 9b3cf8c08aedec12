package wire

import (
	"strconv"
	"strings"
	"sync"
)

// Shards spread a deployment over several Redis Cluster hash slots
// (redis.shards). A shard is a hash tag: everything of one delivery (its
// queue's task, its record, attempts, lease, dead letter and the counters
// its scripts touch) carries its shard's tag, so every script still runs
// in one slot. Shard 0 is the layout postback always had: queue "postback"
// and keys under {pb}. Shard k ≥ 1 is named ShardName(k): its queue has
// that name, and its keys carry it as their tag, so a shard's asynq queue
// and postback's keys share one slot and one master.

// MaxShards is the most shards redis.shards may ask for.
const MaxShards = 1024

// ShardOf places key in one of n shards: FNV-1a of key, modulo n. It is
// 0 when n ≤ 1, without hashing.
func ShardOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	h := uint64(14695981039346656037) // FNV-1a, 64 bits
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return int(h % uint64(n))
}

// Queue is the queue of new deliveries of shard k.
func Queue(k int) string {
	if k == 0 {
		return QueueDefault
	}
	return ShardName(k)
}

// ReplayQueue is the queue of replays of shard k.
func ReplayQueue(k int) string {
	if k == 0 {
		return QueueReplay
	}
	return ShardName(k) + "_replay"
}

// Queues lists the delivery queues of shards 0 to n-1, each shard's
// default queue then its replay queue.
func Queues(n int) []string {
	out := make([]string, 0, 2*max(n, 1))
	for k := range max(n, 1) {
		out = append(out, Queue(k), ReplayQueue(k))
	}
	return out
}

// QueueShard reads a delivery queue's name: its shard, and whether it is
// a replay queue. ok is false for a queue that is not a delivery queue.
func QueueShard(q string) (k int, replay, ok bool) {
	switch q {
	case QueueDefault:
		return 0, false, true
	case QueueReplay:
		return 0, true, true
	}
	name, replay := strings.CutSuffix(q, "_replay")
	rest, found := strings.CutPrefix(name, shardNamePrefix)
	if !found {
		return 0, false, false
	}
	num, _, _ := strings.Cut(rest, "-")
	k, err := strconv.Atoi(num)
	if err != nil || k < 1 || k >= MaxShards || ShardName(k) != name {
		return 0, false, false
	}
	return k, replay, true
}

// shardNamePrefix starts every shard name but shard 0's.
const shardNamePrefix = "postback:"

var shardNames struct {
	sync.Mutex
	names map[int]string
}

// ShardName is the name of shard k ≥ 1: "postback:<k>-<suffix>", the
// suffix the first (in base 36) that puts the name's hash slot in shard
// k's place on the slot ring (see shardSlot). Names never change: a
// shard's keys and queue are found by them.
func ShardName(k int) string {
	shardNames.Lock()
	defer shardNames.Unlock()
	if n, ok := shardNames.names[k]; ok {
		return n
	}
	if shardNames.names == nil {
		shardNames.names = map[int]string{}
	}
	lo := shardSlot(k)
	base := shardNamePrefix + strconv.Itoa(k) + "-"
	var name string
	for s := uint64(0); ; s++ {
		name = base + strconv.FormatUint(s, 36)
		if d := (int(keySlot(name)) - lo + slots) % slots; d < slotWindow {
			break
		}
	}
	shardNames.names[k] = name
	return name
}

// slots is Redis Cluster's number of hash slots; slotWindow the width of
// the slot range a shard's name is searched to fall in.
const (
	slots      = 16384
	slotWindow = 16
)

// shardSlot is where on the slot ring shard k's name falls: shards go
// round the thirds of the ring (k mod 3), and inside a third, halve the
// gaps left (the base-2 van der Corput sequence of k/3). redis-cli gives
// each master an equal run of slots, so N shards spread evenly over 3
// or 6 masters when N is a multiple of their number. (Shard 0's tags,
// {pb} and {postback}, are in the first third.)
func shardSlot(k int) int {
	third, i := k%3, k/3
	v, f := 0.0, 0.5
	for ; i > 0; i >>= 1 {
		if i&1 == 1 {
			v += f
		}
		f /= 2
	}
	// A little past the point, so that a shard at a third's start is not
	// on the last slot of the master before it.
	return int((float64(third)+v)/3*slots) + 2*slotWindow
}

// keySlot is Redis Cluster's hash slot of a key with no hash tag:
// CRC16 (XMODEM) modulo 16384.
func keySlot(key string) uint16 {
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % slots
}
