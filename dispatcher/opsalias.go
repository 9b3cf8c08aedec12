package dispatcher

import "github.com/postbackhq/postback/internal/ops"

type (
	DLQ              = ops.DLQ
	DLQConfig        = ops.DLQConfig
	DeadLetter       = ops.DeadLetter
	DeadLetterDetail = ops.DeadLetterDetail
	Selection        = ops.Selection
	ReplayOptions    = ops.ReplayOptions
	ReplayItem       = ops.ReplayItem
	ReplayResult     = ops.ReplayResult
	Stats            = ops.Stats
	PartnerStats     = ops.PartnerStats
)

const StatsScanLimit = ops.StatsScanLimit

var (
	NewDLQ         = ops.NewDLQ
	ReadStats      = ops.ReadStats
	ErrNoSelection = ops.ErrNoSelection
)
