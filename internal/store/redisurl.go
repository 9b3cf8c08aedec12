package store

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// OpenRedis connects to the Redis a URL names:
//
//	redis://[user:pass@]host:port/db
//	rediss://[user:pass@]host:port/db                 (TLS)
//	redis+sentinel://[:pass@]h1:26379,h2:26379/master/db
//	redis+cluster://[user:pass@]h1:7000,h2:7001
//
// The client is not pinged; the caller decides when to check it.
func OpenRedis(rawURL string) (redis.UniversalClient, error) {
	o, err := ParseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(o), nil
}

// ParseRedisURL turns a Redis URL into go-redis options. Passwords never
// appear in its errors.
func ParseRedisURL(rawURL string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: cannot parse it (want redis://host:port/db)")
	}
	o := &redis.UniversalOptions{}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	hosts := strings.Split(u.Host, ",")
	for _, h := range hosts {
		if h == "" {
			return nil, fmt.Errorf("redis url %s: empty host", redact(u))
		}
	}
	path := strings.Trim(u.Path, "/")
	switch u.Scheme {
	case "redis", "rediss":
		if len(hosts) != 1 {
			return nil, fmt.Errorf("redis url %s: one host expected (use redis+cluster:// or redis+sentinel:// for several)", redact(u))
		}
		o.Addrs = []string{withPort(hosts[0], "6379")}
		if o.DB, err = dbNumber(path); err != nil {
			return nil, fmt.Errorf("redis url %s: %v", redact(u), err)
		}
		if u.Scheme == "rediss" {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: strings.Split(hosts[0], ":")[0]}
		}
	case "redis+sentinel":
		master, db, _ := strings.Cut(path, "/")
		if master == "" {
			return nil, fmt.Errorf("redis url %s: want redis+sentinel://h1:26379,h2:26379/<master>/<db>", redact(u))
		}
		o.MasterName = master
		for _, h := range hosts {
			o.Addrs = append(o.Addrs, withPort(h, "26379"))
		}
		if o.DB, err = dbNumber(db); err != nil {
			return nil, fmt.Errorf("redis url %s: %v", redact(u), err)
		}
		o.SentinelPassword = o.Password
	case "redis+cluster":
		if path != "" {
			return nil, fmt.Errorf("redis url %s: a cluster has no database number", redact(u))
		}
		for _, h := range hosts {
			o.Addrs = append(o.Addrs, withPort(h, "6379"))
		}
		o.IsClusterMode = true
	default:
		return nil, fmt.Errorf("redis url %s: unknown scheme %q (want redis, rediss, redis+sentinel or redis+cluster)", redact(u), u.Scheme)
	}
	return o, nil
}

func withPort(h, port string) string {
	if strings.Contains(h, ":") && !strings.HasSuffix(h, "]") {
		return h
	}
	return h + ":" + port
}

func dbNumber(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("database %q is not a number", s)
	}
	return n, nil
}

// redact hides the password of a URL for messages.
func redact(u *url.URL) string { return u.Redacted() }
