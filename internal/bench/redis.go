package bench

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// eachNode runs fn on every node that holds data: each master of a
// cluster, or the one server otherwise.
func eachNode(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, redis.Cmdable) error) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return fn(ctx, c) })
	}
	return fn(ctx, rdb)
}

// dbSize counts the keys of the database (of every master of a cluster).
func dbSize(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	var mu sync.Mutex
	var n int64
	err := eachNode(ctx, rdb, func(ctx context.Context, c redis.Cmdable) error {
		k, err := c.DBSize(ctx).Result()
		mu.Lock()
		n += k
		mu.Unlock()
		return err
	})
	return n, err
}

// flush empties the database bench runs in (checked empty at the start).
func flush(ctx context.Context, rdb redis.UniversalClient) error {
	return eachNode(ctx, rdb, func(ctx context.Context, c redis.Cmdable) error {
		return c.FlushDB(ctx).Err()
	})
}

// usedMemory is INFO memory's used_memory, summed over the masters.
func usedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	var mu sync.Mutex
	var n int64
	err := eachNode(ctx, rdb, func(ctx context.Context, c redis.Cmdable) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		v, err := infoField(info, "used_memory")
		mu.Lock()
		n += v
		mu.Unlock()
		return err
	})
	return n, err
}

// serverVersion is INFO server's redis_version of one node.
func serverVersion(ctx context.Context, rdb redis.UniversalClient) string {
	var mu sync.Mutex // a cluster's masters answer at once
	version := "unknown"
	_ = eachNode(ctx, rdb, func(ctx context.Context, c redis.Cmdable) error {
		info, err := c.Info(ctx, "server").Result()
		if err == nil {
			mu.Lock()
			version = infoString(info, "redis_version")
			mu.Unlock()
		}
		return nil
	})
	return version
}

func infoString(info, field string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func infoField(info, field string) (int64, error) {
	s := infoString(info, field)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("INFO %s: %q is not a number", field, s)
	}
	return n, nil
}
