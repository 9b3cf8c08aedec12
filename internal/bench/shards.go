package bench

import (
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

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
