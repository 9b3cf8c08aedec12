package config

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// MaxShards is the most redis.shards and redis.drain_shards may be.
const MaxShards = 1024

// RedisConfig is the `redis:` section: how postback lays its data out in
// Redis.
type RedisConfig struct {
	// Shards spreads deliveries over this many hash tags, each with its
	// own queue, so that a Redis Cluster carries them on as many slots
	// (and masters). Default 1: every key under {pb} and one queue,
	// "postback", the layout postback always had. 1 to MaxShards.
	Shards int
	// DrainShards keeps workers serving, and the ops commands reading,
	// shards up to this number while fewer are placed into (after
	// lowering Shards), until the ones beyond Shards are empty. Default
	// 0: Shards alone.
	DrainShards int
}

// Served is how many shards workers serve and the ops commands read:
// the larger of Shards and DrainShards, at least 1.
func (c RedisConfig) Served() int { return max(c.Shards, c.DrainShards, 1) }

// Placed is how many shards new deliveries are placed into, at least 1.
func (c RedisConfig) Placed() int { return max(c.Shards, 1) }

func (l *loader) redis(n *yaml.Node, c *RedisConfig) {
	l.mapping(n, "", "redis", func(key string, k, v *yaml.Node) {
		f := "redis." + key
		switch key {
		case "shards":
			c.Shards = l.shards(v, f, 1)
		case "drain_shards":
			c.DrainShards = l.shards(v, f, 0)
		default:
			l.errf(k, "", f, "unknown key (want shards or drain_shards)")
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
	if running.Redis.Placed() != next.Redis.Placed() || running.Redis.Served() != next.Redis.Served() {
		return fmt.Errorf("redis.shards or redis.drain_shards changed (%d and %d to %d and %d): restart the processes to change them (see Redis Cluster in docs/operations.md)",
			running.Redis.Shards, running.Redis.DrainShards, next.Redis.Shards, next.Redis.DrainShards)
	}
	return nil
}
