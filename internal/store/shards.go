package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Locate returns, for each delivery id, the store of the shard that holds
// its record, or nil when no shard does. With one shard it reads nothing:
// every record is shard 0's. Otherwise it is one pipeline over every
// shard (which a cluster client sends to each master at once).
func (s *Store) Locate(ctx context.Context, ids []string) ([]*Store, error) {
	out := make([]*Store, len(ids))
	all := s.All()
	if len(all) == 1 {
		for i := range out {
			out[i] = all[0]
		}
		return out, nil
	}
	cmds := make([][]*redis.IntCmd, len(all))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, sh := range all {
			cmds[k] = make([]*redis.IntCmd, len(ids))
			for i, id := range ids {
				cmds[k][i] = p.Exists(ctx, sh.DeliveryKey(id))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find delivery records: %w", err)
	}
	for k, sh := range all {
		for i := range ids {
			if out[i] == nil && cmds[k][i].Val() > 0 {
				out[i] = sh
			}
		}
	}
	return out, nil
}

// Find returns the store of the shard that holds delivery id's record,
// or ErrNotFound.
func (s *Store) Find(ctx context.Context, id string) (*Store, error) {
	at, err := s.Locate(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if at[0] == nil {
		return nil, ErrNotFound
	}
	return at[0], nil
}
