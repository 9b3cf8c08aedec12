package dispatcher

import "github.com/postbackhq/postback/internal/wire"

type (
	Payload  = wire.Payload
	Delivery = wire.Delivery
)

const (
	TypeDeliver       = wire.TypeDeliver
	TypeDeliverBundle = wire.TypeDeliverBundle
	QueueDefault      = wire.QueueDefault
	QueueReplay       = wire.QueueReplay
	TaskTimeoutSlack  = wire.TaskTimeoutSlack
	StartSlack        = wire.StartSlack
)

var (
	EncodePayload  = wire.EncodePayload
	DecodePayload  = wire.DecodePayload
	PayloadHead    = wire.PayloadHead
	ErrNewerFormat = wire.ErrNewerFormat
	EncodeClaim    = wire.EncodeClaim
	DecodeClaim    = wire.DecodeClaim
	ErrNewerClaim  = wire.ErrNewerClaim
	DecodeBundle   = wire.DecodeBundle
	SplitBundle    = wire.SplitBundle
	NewTask        = wire.NewTask
	NewBundleTask  = wire.NewBundleTask
	TaskDeliveries = wire.TaskDeliveries
	TaskHead       = wire.TaskHead
)
