package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
)

func TestParse_RedisShards(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("postback.yaml", []byte("api:\n  dedup_window: 1h\n"), env)
	require.NoError(t, err)
	require.Equal(t, 1, cfg.Redis.Shards, "one shard by default: the layout postback always had")
	require.Equal(t, 1, cfg.Redis.Served())

	cfg, err = config.Parse("postback.yaml", []byte("redis:\n  shards: 6\n"), env)
	require.NoError(t, err)
	require.Equal(t, 6, cfg.Redis.Placed())
	require.Equal(t, 6, cfg.Redis.Served())

	cfg, err = config.Parse("postback.yaml", []byte("redis: {shards: 2, previous_shards: 4}\n"), env)
	require.NoError(t, err)
	require.Equal(t, 2, cfg.Redis.Placed(), "new deliveries go to 2 shards")
	require.Equal(t, 4, cfg.Redis.Served(), "while 4 are served until drained")

	require.Equal(t, []string{
		`postback.yaml:2:11: redis.shards: "0" is not a whole number from 1 to 1024`,
		`postback.yaml:3:20: redis.previous_shards: "1025" is not a whole number from 0 to 1024`,
		`postback.yaml:4:3: redis.shard: unknown key (want shards or previous_shards)`,
	}, problems(t, "redis:\n  shards: 0\n  previous_shards: 1025\n  shard: 2\n"))
	require.Equal(t, []string{`postback.yaml:1:17: redis.shards: "two" is not a whole number from 1 to 1024`},
		problems(t, "redis: {shards: two}\n"))
	require.Equal(t, []string{`postback.yaml:1:17: redis.shards: "1.5" is not a whole number from 1 to 1024`},
		problems(t, "redis: {shards: 1.5}\n"))
}

func TestCheckShardsChange(t *testing.T) {
	t.Parallel()
	parse := func(src string) *config.Config {
		cfg, err := config.Parse("postback.yaml", []byte(src), env)
		require.NoError(t, err)
		return cfg
	}
	one, four := parse("api: {dedup_window: 1h}\n"), parse("redis: {shards: 4}\n")
	require.NoError(t, config.CheckShardsChange(one, parse("redis: {shards: 1}\n")))
	require.ErrorContains(t, config.CheckShardsChange(one, four), "restart")
	require.ErrorContains(t, config.CheckShardsChange(four, parse("redis: {shards: 4, previous_shards: 8}\n")), "restart")
}
