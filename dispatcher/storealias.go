package dispatcher

import "github.com/postbackhq/postback/internal/store"

var (
	OpenRedis     = store.OpenRedis
	ParseRedisURL = store.ParseRedisURL
)
