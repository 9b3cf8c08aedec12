package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names set by [Signer.Header], as the Standard Webhooks specification
// spells them. [http.Header] stores them canonicalized (Webhook-Id…); header
// names are case-insensitive on the wire.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks secret whose remainder is base64.
const secretPrefix = "whsec_"

// ErrNoSecrets is returned by [NewSigner] when it is given no secret at all.
var ErrNoSecrets = errors.New("signing: no secrets")

// SecretError reports a secret that cannot be used. It names the secret by its
// position in the list and never carries its value.
type SecretError struct {
	Index int   // position of the secret in the list given to NewSigner, from 0
	Err   error // what is wrong with it
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("signing: secret %d: %v", e.Index, e.Err)
}

func (e *SecretError) Unwrap() error { return e.Err }

// Signer signs postbacks with one or more secrets. It is immutable once built
// and safe for concurrent use.
type Signer struct {
	keys [][]byte
}

// NewSigner decodes secrets once and returns a Signer that signs with every one
// of them, in order. A secret with the "whsec_" prefix must be valid standard
// base64 after the prefix; any other secret is used as raw bytes. An empty key
// is refused. Errors are [*SecretError] (or [ErrNoSecrets]) and never contain a
// secret's value.
func NewSigner(secrets []string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecrets
	}
	keys := make([][]byte, len(secrets))
	for i, secret := range secrets {
		key, err := decodeSecret(secret)
		if err != nil {
			return nil, &SecretError{Index: i, Err: err}
		}
		keys[i] = key
	}
	return &Signer{keys: keys}, nil
}

func decodeSecret(secret string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			// CorruptInputError names a byte offset only, never the data.
			return nil, fmt.Errorf("invalid base64 after %q prefix: %w", secretPrefix, err)
		}
		if len(key) == 0 {
			return nil, fmt.Errorf("empty key after %q prefix", secretPrefix)
		}
		return key, nil
	}
	if secret == "" {
		return nil, errors.New("empty")
	}
	return []byte(secret), nil
}

// Header sets the three Standard Webhooks headers on h for a message with the
// given id, timestamp and body. The timestamp is sent in whole Unix seconds.
// Use the delivery id as msgID so that every retry of a delivery carries the
// same webhook-id and partners can de-duplicate.
func (s *Signer) Header(h http.Header, msgID string, ts time.Time, body []byte) {
	unix := ts.Unix()
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(unix, 10))
	h.Set(HeaderSignature, s.signature(msgID, unix, body))
}

// Signature returns the webhook-signature header value for the message:
// "v1,<base64>" once per secret, separated by single spaces.
func (s *Signer) Signature(msgID string, ts time.Time, body []byte) string {
	return s.signature(msgID, ts.Unix(), body)
}

func (s *Signer) signature(msgID string, unix int64, body []byte) string {
	// The signed content is "id.timestamp.body"; build its prefix once.
	prefix := make([]byte, 0, len(msgID)+22)
	prefix = append(prefix, msgID...)
	prefix = append(prefix, '.')
	prefix = strconv.AppendInt(prefix, unix, 10)
	prefix = append(prefix, '.')

	var b strings.Builder
	b.Grow(len(s.keys) * (3 + base64.StdEncoding.EncodedLen(sha256.Size) + 1))
	for i, key := range s.keys {
		mac := hmac.New(sha256.New, key)
		mac.Write(prefix)
		mac.Write(body)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}
