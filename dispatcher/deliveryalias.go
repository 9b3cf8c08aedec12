package dispatcher

import "github.com/postbackhq/postback/internal/delivery"

type (
	Worker        = delivery.Worker
	WorkerConfig  = delivery.WorkerConfig
	Handler       = delivery.Handler
	HandlerConfig = delivery.HandlerConfig
	Gate          = delivery.Gate
	GateConfig    = delivery.GateConfig
	Sender        = delivery.Sender
)

var (
	NewWorker          = delivery.NewWorker
	NewHandler         = delivery.NewHandler
	NewGate            = delivery.NewGate
	DefaultDequeuers   = delivery.DefaultDequeuers
	SplitConcurrency   = delivery.SplitConcurrency
	ErrRateLimited     = delivery.ErrRateLimited
	ErrAttemptUnderWay = delivery.ErrAttemptUnderWay
)
