package wire

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/postbackhq/postback/retry"
)

// DeliveryID is the stable id of the delivery of event eventID to partner
// partnerID: "dlv_" and 32 hex digits of SHA-256 over both. Retries and
// replays keep it, so partners can de-duplicate on it.
func DeliveryID(eventID, partnerID string) string {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(partnerID))
	var sum [sha256.Size]byte
	return "dlv_" + hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// Delivery is one partner an accepted event goes to.
type Delivery struct {
	ID      string `json:"id"`
	Partner string `json:"partner"`
	// Status is queued, or skipped with Reason.
	Status retry.Status `json:"status,omitempty"`
	Reason string       `json:"reason,omitempty"`
}
