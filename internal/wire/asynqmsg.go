package wire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// An asynq task is stored as a hash whose "msg" field is asynq's
// TaskMessage, in protobuf (asynq v0.26's internal/proto/asynq.proto).
// Only the fields an erasure reads or rewrites are named here; every other
// field is kept byte for byte.
const (
	asynqFieldType     = 1 // string type
	asynqFieldPayload  = 2 // bytes payload
	asynqFieldID       = 3 // string id
	asynqFieldErrorMsg = 7 // string error_msg: the handler's last error
)

// AsynqMessage is what an erasure needs of an asynq TaskMessage.
type AsynqMessage struct {
	Type     string
	ID       string
	Payload  []byte
	ErrorMsg string
}

// DecodeAsynqMessage reads the type, id, payload and last error of an
// asynq TaskMessage.
func DecodeAsynqMessage(b []byte) (AsynqMessage, error) {
	var m AsynqMessage
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, field, value []byte) {
		if typ != protowire.BytesType {
			return
		}
		switch num {
		case asynqFieldType:
			m.Type = string(value)
		case asynqFieldID:
			m.ID = string(value)
		case asynqFieldPayload:
			m.Payload = value
		case asynqFieldErrorMsg:
			m.ErrorMsg = string(value)
		}
	})
	return m, err
}

// RewriteAsynqMessage returns TaskMessage b with its payload and last
// error replaced, every other field as it was.
func RewriteAsynqMessage(b, payload []byte, errorMsg string) ([]byte, error) {
	out := make([]byte, 0, len(b))
	sawErr := false
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, field, value []byte) {
		switch {
		case typ == protowire.BytesType && num == asynqFieldPayload:
			out = protowire.AppendTag(out, num, typ)
			out = protowire.AppendBytes(out, payload)
		case typ == protowire.BytesType && num == asynqFieldErrorMsg:
			sawErr = true
			if errorMsg != "" {
				out = protowire.AppendTag(out, num, typ)
				out = protowire.AppendString(out, errorMsg)
			}
		default:
			out = append(out, field...)
		}
	})
	if err != nil {
		return nil, err
	}
	if !sawErr && errorMsg != "" {
		out = protowire.AppendTag(out, asynqFieldErrorMsg, protowire.BytesType)
		out = protowire.AppendString(out, errorMsg)
	}
	return out, nil
}

// walkProto calls fn with each field of protobuf message b: its number,
// wire type, whole encoding (tag included) and, for a length-delimited
// field, its value.
func walkProto(b []byte, fn func(num protowire.Number, typ protowire.Type, field, value []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("asynq task message: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return fmt.Errorf("asynq task message: field %d: %w", num, protowire.ParseError(m))
		}
		var value []byte
		if typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(b[n:])
			if k < 0 {
				return errors.New("asynq task message: bad length")
			}
			value = v
		}
		fn(num, typ, b[:n+m], value)
		b = b[n+m:]
	}
	return nil
}
