package dispatcher

import (
	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/wire"
)

type (
	Config         = config.Config
	APIConfig      = config.APIConfig
	DeliveryConfig = config.DeliveryConfig
	Live           = config.Live
	Partner        = config.Partner
	Route          = config.Route
	Header         = config.Header
	RateLimit      = config.RateLimit
	Requirement    = config.Requirement
	Match          = config.Match
	Request        = config.Request
	RenderError    = config.RenderError
	Condition      = config.Condition
	ConditionError = config.ConditionError
)

const (
	MatchAll            = config.MatchAll
	MatchAttributed     = config.MatchAttributed
	DefaultTimeout      = config.DefaultTimeout
	DefaultWaitTimeout  = config.DefaultWaitTimeout
	DefaultDedupWindow  = config.DefaultDedupWindow
	DefaultMaxBodyBytes = config.DefaultMaxBodyBytes
)

var (
	NewLive          = config.NewLive
	NewConfig        = config.NewConfig
	Routes           = config.Routes
	DeliveryID       = wire.DeliveryID
	CompileCondition = config.CompileCondition
)
