package wire

import "strconv"

// Format is one stored form and the versions of it this build reads and
// writes, as `postback version` prints them. A worker reads every version
// an API it runs beside may write: upgrade workers first.
type Format struct {
	Name   string   `json:"name"`
	Reads  []string `json:"reads"`
	Writes []string `json:"writes"`
}

// Formats lists the stored forms of this build.
func Formats() []Format {
	v := func(b byte) string { return strconv.Itoa(int(b)) }
	return []Format{
		{Name: "task payload", Reads: []string{"json", v(payloadV1), v(payloadV2)},
			Writes: []string{v(payloadV1), v(payloadV2) + " (with lifecycle fields, an order or a traceparent)"}},
		// bundleV1 is the byte 0xb1: version 1 of the bundle.
		{Name: "bundle", Reads: []string{v(bundleV1 - 0xb0)}, Writes: []string{v(bundleV1 - 0xb0)}},
		{Name: "event claim", Reads: []string{v(claimV1), v(claimV2)}, Writes: []string{v(claimV2)}},
		// The key layout: 1, one shard (every key under {pb}, queue
		// postback), or redis.shards of them (see ShardName).
		{Name: "key layout", Reads: []string{"1", "shards"}, Writes: []string{"1", "shards (redis.shards above 1)"}},
	}
}
