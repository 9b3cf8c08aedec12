package config

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// MaxShards is the most redis.shards and redis.previous_shards may be.
const MaxShards = 1024

// RedisConfig is the `redis:` section: how postback lays its data out in
// Redis.
type RedisConfig struct {
	// Shards spreads deliveries over this many hash tags, each with its
	// own queue, so that a Redis Cluster carries them on as many slots
	// (and masters). Default 1: every key under {pb} and one queue,
	// "postback", the layout postback always had. 1 to MaxShards.
	Shards int
	// PreviousShards is Shards before its last change, kept for a while
	// after it: workers keep serving, and the ops commands reading, that
	// many shards too (the ones beyond Shards, after lowering it, until
	// they are empty), and intake finds the claims of events placed
	// before the change (for one api.dedup_window), so that their
	// repeats are answered as duplicates. Default 0: none.
	PreviousShards int
}

// Served is how many shards workers serve and the ops commands read:
// the larger of Shards and PreviousShards, at least 1.
func (c RedisConfig) Served() int { return max(c.Shards, c.PreviousShards, 1) }

// Placed is how many shards new deliveries are placed into, at least 1.
func (c RedisConfig) Placed() int { return max(c.Shards, 1) }

// Previous is the number of shards of the layout before the last change
// when it differs from the one in force, else 0.
func (c RedisConfig) Previous() int {
	if c.PreviousShards == 0 || c.PreviousShards == c.Placed() {
		return 0
	}
	return c.PreviousShards
}

func (l *loader) redis(n *yaml.Node, c *RedisConfig) {
	l.mapping(n, "", "redis", func(key string, k, v *yaml.Node) {
		f := "redis." + key
		switch key {
		case "shards":
			c.Shards = l.shards(v, f, 1)
		case "previous_shards":
			c.PreviousShards = l.shards(v, f, 0)
		default:
			l.errf(k, "", f, "unknown key (want shards or previous_shards)")
		}
	})
}

// shards reads a number of shards: a whole number from lo to MaxShards.
func (l *loader) shards(n *yaml.Node, field string, lo int) int {
	s, ok := l.str(n, "", field)
	if !ok {
		return 0
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < lo || i > MaxShards {
		l.errf(n, "", field, "%q is not a whole number from %d to %d", s, lo, MaxShards)
		return 0
	}
	return i
}

// CheckShardsChange reports why the running config's redis section
// cannot change to next's without a restart, or nil: a worker's queues
// and every reader's shards are fixed when it starts.
func CheckShardsChange(running, next *Config) error {
	if running.Redis.Placed() != next.Redis.Placed() || running.Redis.Served() != next.Redis.Served() || running.Redis.Previous() != next.Redis.Previous() {
		return fmt.Errorf("redis.shards or redis.previous_shards changed (%d and %d to %d and %d): restart the processes to change them (see Redis Cluster in docs/operations.md)",
			running.Redis.Shards, running.Redis.PreviousShards, next.Redis.Shards, next.Redis.PreviousShards)
	}
	return nil
}
