package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/postbackhq/postback/internal/wire"
)

// shardsYAML is the bench config's redis section for n shards ("" for
// one: the default layout).
func shardsYAML(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf("redis:\n  shards: %d\n", n)
}

// anyShardTask reads one pending (or held) delivery task of any shard.
func anyShardTask(insp *asynq.Inspector, shards int) ([]*asynq.TaskInfo, error) {
	for k := range shards {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){insp.ListPendingTasks, insp.ListScheduledTasks} {
			if tasks, err := list(wire.Queue(k), asynq.PageSize(1)); err == nil && len(tasks) > 0 {
				return tasks, nil
			}
		}
	}
	return nil, errors.New("no delivery task in any shard")
}

// MasterCommands is one Redis Cluster master's part of the commands run
// during the end-to-end phase.
type MasterCommands struct {
	Addr     string  `json:"addr"`
	Commands int64   `json:"commands"`
	Share    float64 `json:"share"` // of all the masters' commands, 0 to 1
}

// masterCalls reads each master's total_commands_processed; nil when rdb
// is not a Redis Cluster client.
func masterCalls(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return nil, nil
	}
	var mu sync.Mutex
	calls := map[string]int64{}
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "stats").Result()
		if err != nil {
			return err
		}
		n, err := infoField(info, "total_commands_processed")
		mu.Lock()
		calls[c.Options().Addr] = n
		mu.Unlock()
		return err
	})
	return calls, err
}

// masterShares is each master's commands between two masterCalls, and
// its share of them all, by address.
func masterShares(before, after map[string]int64) []MasterCommands {
	var out []MasterCommands
	var total int64
	for addr, n := range after {
		d := n - before[addr]
		out = append(out, MasterCommands{Addr: addr, Commands: d})
		total += d
	}
	slices.SortFunc(out, func(a, b MasterCommands) int { return cmp.Compare(a.Addr, b.Addr) })
	for i := range out {
		if total > 0 {
			out[i].Share = float64(out[i].Commands) / float64(total)
		}
	}
	return out
}

// masterSharesText is the table's view of shares: "addr 34%, …".
func masterSharesText(ms []MasterCommands) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s %.0f%%", m.Addr, 100*m.Share)
	}
	return strings.Join(parts, ", ")
}
