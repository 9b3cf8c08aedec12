package dispatcher

import "github.com/postbackhq/postback/internal/intake"

type (
	Client       = intake.Client
	ClientConfig = intake.ClientConfig
	Receipt      = intake.Receipt
	BatchResult  = intake.BatchResult
)

const (
	MaxBatch                = intake.MaxBatch
	DefaultBundleSize       = intake.DefaultBundleSize
	DefaultBatchConcurrency = intake.DefaultBatchConcurrency
)

var (
	NewClient         = intake.NewClient
	ErrUnavailable    = intake.ErrUnavailable
	ErrNotReplicated  = intake.ErrNotReplicated
	CheckWaitReplicas = intake.CheckWaitReplicas
)
