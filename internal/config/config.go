package config

import (
	"sync/atomic"
	"time"
)

// Config is a loaded postback.yaml (see package dispatcher/config for the
// loader). It is immutable once loaded; a reload builds a new one.
type Config struct {
	// Source is the file it was loaded from, for messages.
	Source   string
	API      APIConfig
	Delivery DeliveryConfig
	Partners []*Partner
	// IntakeOnly is set on a config loaded for enqueueing only (see
	// LoadIntake): its partners have no templates or signers.
	IntakeOnly bool
	// Ops is the `ops:` section: where operational events go.
	Ops  OpsConfig
	byID map[string]*Partner

	// Redis is the `redis:` section: the data's layout (shards).
	Redis RedisConfig
}

// APIConfig is the `api:` section.
type APIConfig struct {
	// Keys are the bearer tokens the enqueue API accepts. Default none: the
	// API refuses to start unless told to run without auth.
	Keys []string
	// KeyProblems lists keys whose ${env:NAME} was not set, as
	// "api.keys[0]: environment variable NAME is not set". Only the API
	// needs its keys, so the loader does not fail on them (the ops commands
	// and workers load the same file without the API's secrets); the API
	// refuses to start while any is listed.
	KeyProblems []string
	// MaxBodyBytes caps a request body. Default 1 MiB.
	MaxBodyBytes int64
	// DedupWindow is how long an event id is remembered. Default 24h.
	DedupWindow time.Duration
	// WaitReplicas is how many replicas must have an event's writes
	// before it is answered as accepted (Redis WAIT). Default 0: the
	// master's answer is enough, and a failover can lose what it had not
	// yet replicated. Single server or Sentinel only.
	WaitReplicas int
	// WaitTimeout bounds that wait. Default 500ms. An event whose writes
	// were not acknowledged in time is answered as unavailable (503):
	// the master has it, and a repeat is answered as its duplicate, or
	// stores it again if a failover lost it.
	WaitTimeout time.Duration
	// Strict refuses an event (400, naming the field) whose optional
	// identifier is invalid once normalised: an email that is not an
	// address, a device id that is not a UUID, an IP that does not parse,
	// a country that is not two letters. Default false: such a field is
	// dropped, the event is stored without it, and the answer's warnings
	// name it, so that no conversion is lost over an optional field. The
	// Go client and postback enqueue follow it too.
	Strict bool
}

// DeliveryConfig is the `delivery:` section.
type DeliveryConfig struct {
	// Timeout bounds one attempt when the partner sets none. Default 10s.
	Timeout time.Duration
	// AllowPrivateNetworks opens the SSRF guard. Default false.
	AllowPrivateNetworks bool
	// AttemptLogRetention is how long delivery records and attempt
	// histories are kept (dead letters are kept until removed). Default 720h.
	AttemptLogRetention time.Duration
}

// Defaults of the config file.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultDedupWindow  = 24 * time.Hour
	DefaultWaitTimeout  = 500 * time.Millisecond
	// MaxWaitTimeout keeps a wait, which may follow the round already
	// under way, inside the API's 3s store timeout.
	MaxWaitTimeout             = time.Second
	DefaultTimeout             = 10 * time.Second
	DefaultAttemptLogRetention = 720 * time.Hour
)

// NewConfig indexes partners and returns the config. Loaders call it last.
func NewConfig(source string, api APIConfig, delivery DeliveryConfig, partners []*Partner) *Config {
	c := &Config{Source: source, API: api, Delivery: delivery, Partners: partners, byID: make(map[string]*Partner, len(partners))}
	for _, p := range partners {
		c.byID[p.ID] = p
	}
	return c
}

// Partner returns the partner with id, or nil.
func (c *Config) Partner(id string) *Partner { return c.byID[id] }

// Live holds the config in force; a reload swaps it atomically, and every
// delivery reads the partner's current config when it runs.
type Live struct{ p atomic.Pointer[Config] }

// NewLive returns a Live holding c.
func NewLive(c *Config) *Live {
	l := &Live{}
	l.p.Store(c)
	return l
}

// Load returns the config in force.
func (l *Live) Load() *Config { return l.p.Load() }

// Store puts c in force.
func (l *Live) Store(c *Config) { l.p.Store(c) }
