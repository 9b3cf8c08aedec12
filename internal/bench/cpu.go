package bench

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// cpuTimes is CPU time spent by this process (API, worker, partner and
// load, or raw asynq's producers and server) and by the Redis server.
type cpuTimes struct {
	Process time.Duration
	Redis   time.Duration // -1 when INFO cpu could not be read
}

// cpuNow reads both counters: getrusage for this process, INFO cpu
// (used_cpu_user + used_cpu_sys, the whole server; summed over a
// cluster's masters) for Redis.
func (r *run) cpuNow() cpuTimes {
	var c cpuTimes
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.Process = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Every master of a cluster: the Redis side is their sum.
	var mu sync.Mutex
	var sum time.Duration
	err := eachNode(ctx, r.cfg.Redis, func(ctx context.Context, c redis.Cmdable) error {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return err
		}
		mu.Lock()
		sum += redisCPU(info)
		mu.Unlock()
		return nil
	})
	c.Redis = -1
	if err == nil {
		c.Redis = sum
	}
	return c
}

// redisCPU adds used_cpu_user and used_cpu_sys of an INFO cpu answer.
func redisCPU(info string) time.Duration {
	var sum float64
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			sum += f
		}
	}
	return time.Duration(sum * float64(time.Second))
}
