package bench

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuTimes is CPU time spent by this process (API, worker, partner and
// load, or raw asynq's producers and server) and by the Redis server.
type cpuTimes struct {
	Process time.Duration
	Redis   time.Duration // -1 when INFO cpu could not be read
}

// cpuNow reads both counters: getrusage for this process, INFO cpu
// (used_cpu_user + used_cpu_sys, the whole server) for Redis.
func (r *run) cpuNow() cpuTimes {
	var c cpuTimes
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.Process = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Redis = -1
	if info, err := r.cfg.Redis.Info(ctx, "cpu").Result(); err == nil {
		c.Redis = redisCPU(info)
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
