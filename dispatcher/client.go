package dispatcher

import (
	"context"
	"errors"
	"os"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/intake"
	"github.com/postbackhq/postback/internal/store"
	"github.com/postbackhq/postback/internal/tracing"
	"github.com/postbackhq/postback/internal/wire"
)

// The errors a caller branches on (with errors.Is).
var (
	// ErrUnavailable wraps a failure to store an event: Redis is
	// unreachable or failing. The outcome is unknown: the event may have
	// been stored. Repeat it with the same id; a repeat of a stored event
	// is answered as its duplicate.
	ErrUnavailable = intake.ErrUnavailable
	// ErrNotReplicated comes with ErrUnavailable when the Redis master
	// stored the event but fewer than api.wait_replicas replicas
	// acknowledged it in time.
	ErrNotReplicated = intake.ErrNotReplicated
	// ErrNewerClaim is a repeat of an event first received by a newer
	// postback, whose record this one cannot read (mid-upgrade).
	ErrNewerClaim = wire.ErrNewerClaim
)

// MaxBatch is the most events one EnqueueBatch call may carry.
const MaxBatch = intake.MaxBatch

// Receipt is the answer to Enqueue: the event's deliveries, one a partner,
// and the Warnings about fields dropped from it.
type Receipt = intake.Receipt

// Delivery is one partner an accepted event goes to, with its delivery id
// (the Idempotency-Key partners receive).
type Delivery = wire.Delivery

// BatchResult is what EnqueueBatch says of one event: a Receipt or an Err.
type BatchResult = intake.BatchResult

// ClientConfig configures a Client.
type ClientConfig struct {
	// Redis is where events are stored: the Redis the workers read.
	// Required; see OpenRedis.
	Redis redis.UniversalClient
	// ConfigFile is the path of postback.yaml. Only the partners' routing
	// is read (events, match, when, privacy, timeout): their URLs,
	// headers and signing secrets are not, so their ${env:…} need not be
	// set here. Required unless ConfigYAML is set.
	ConfigFile string
	// ConfigYAML is the config's content, used instead of ConfigFile.
	ConfigYAML []byte
	// BundleSize is how many deliveries to one partner, of the events of
	// one EnqueueBatch (or of concurrent Enqueue calls stored together),
	// may share one queue task. Default 50; 1 gives each delivery its own
	// task.
	BundleSize int
	// NoGroupCommit stores each Enqueue call's event on its own. By
	// default the events of concurrent calls that arrive while earlier
	// ones are being stored are stored together, as one batch; each call
	// is still answered once its own event is stored.
	NoGroupCommit bool
	// TracerProvider, when set, gives each enqueued event an intake span
	// (a child of the span in the call's context), which the deliveries'
	// attempts link to. Default nil: no tracing, and tasks stay in the form
	// every worker reads (see docs/operations.md, Tracing).
	TracerProvider trace.TracerProvider
}

// Client enqueues conversions straight to Redis, with the validation,
// de-duplication and routing of POST /v1/events; postback's workers send
// them. Safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	live *config.Live
	c    *intake.Client
}

// NewClient returns a Client. Close it when done.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Redis == nil {
		return nil, errors.New("dispatcher: ClientConfig.Redis is required")
	}
	if cfg.ConfigFile == "" && cfg.ConfigYAML == nil {
		return nil, errors.New("dispatcher: ClientConfig needs ConfigFile or ConfigYAML")
	}
	conf, err := loadConfig(cfg)
	if err != nil {
		return nil, err
	}
	live := config.NewLive(conf)
	c, err := intake.NewClient(intake.ClientConfig{Redis: cfg.Redis, Config: live, BundleSize: cfg.BundleSize, NoGroupCommit: cfg.NoGroupCommit, Tracer: tracing.New(cfg.TracerProvider)})
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, live: live, c: c}, nil
}

func loadConfig(cfg ClientConfig) (*config.Config, error) {
	if cfg.ConfigYAML != nil {
		name := cfg.ConfigFile
		if name == "" {
			name = "postback.yaml"
		}
		return config.ParseIntake(name, cfg.ConfigYAML, os.LookupEnv)
	}
	return config.LoadIntake(cfg.ConfigFile)
}

// Reload reads ConfigFile (or ConfigYAML) again and puts it in force for
// the events enqueued from then on. A config that does not load is
// refused and the one in force stays.
func (c *Client) Reload() error {
	conf, err := loadConfig(c.cfg)
	if err != nil {
		return err
	}
	if err := intake.CheckWaitReplicas(c.cfg.Redis, conf); err != nil {
		return err
	}
	c.live.Store(conf)
	return nil
}

// Enqueue stores ev and enqueues its deliveries. The same event id within
// the dedup window returns the first receipt with Duplicate set and never
// sends twice. An error wrapping ErrUnavailable means the outcome is
// unknown; repeat the call. A *FieldError means the event was refused.
//
// ev is normalised in place before it is routed and stored, as the API
// does: email trimmed and lowercased, IDFA and IDFV upper case, GAID lower
// case, country upper case, identifiers trimmed. An optional field still
// invalid then (an email that is not an address, a device id that is not
// a UUID, an IP that does not parse, a country that is not two letters)
// is dropped and named in Receipt.Warnings; with api.strict: true in the
// config, it is refused with a *FieldError instead.
func (c *Client) Enqueue(ctx context.Context, ev *Event) (*Receipt, error) {
	return c.c.Enqueue(ctx, ev)
}

// EnqueueBatch enqueues up to MaxBatch events as Enqueue would, in one
// round trip to Redis on a single server, and returns one result per
// event: results[i] is about evs[i].
func (c *Client) EnqueueBatch(ctx context.Context, evs []*Event) []BatchResult {
	return c.c.EnqueueBatch(ctx, evs)
}

// Close releases the Client's own connections (not the Redis client it
// was given).
func (c *Client) Close() error { return c.c.Close() }

// OpenRedis connects to the Redis a URL names: redis://[user:pass@]host:port/db,
// rediss:// (TLS), redis+sentinel://[:pass@]h1:26379,h2:26379/master/db or
// redis+cluster://h1:7000,h2:7001.
func OpenRedis(url string) (redis.UniversalClient, error) { return store.OpenRedis(url) }
