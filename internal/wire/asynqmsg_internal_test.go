package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestRewriteAsynqMessage_KeepsOtherFields(t *testing.T) {
	t.Parallel()
	var b []byte
	b = protowire.AppendTag(b, asynqFieldType, protowire.BytesType)
	b = protowire.AppendString(b, TypeDeliver)
	b = protowire.AppendTag(b, asynqFieldPayload, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("old payload"))
	b = protowire.AppendTag(b, asynqFieldID, protowire.BytesType)
	b = protowire.AppendString(b, "dlv_1")
	b = protowire.AppendTag(b, 5, protowire.VarintType) // retry
	b = protowire.AppendVarint(b, 1<<20)
	b = protowire.AppendTag(b, asynqFieldErrorMsg, protowire.BytesType)
	b = protowire.AppendString(b, "old error")
	b = protowire.AppendTag(b, 8, protowire.VarintType) // timeout
	b = protowire.AppendVarint(b, 25)

	out, err := RewriteAsynqMessage(b, []byte("new"), "")
	require.NoError(t, err)
	m, err := DecodeAsynqMessage(out)
	require.NoError(t, err)
	require.Equal(t, AsynqMessage{Type: TypeDeliver, ID: "dlv_1", Payload: []byte("new")}, m)
	var varints []uint64
	require.NoError(t, walkProto(out, func(num protowire.Number, typ protowire.Type, field, _ []byte) {
		if typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(field[protowire.SizeTag(num):])
			varints = append(varints, v)
		}
	}))
	require.Equal(t, []uint64{1 << 20, 25}, varints)

	out, err = RewriteAsynqMessage(out, []byte("new"), "redacted")
	require.NoError(t, err)
	m, err = DecodeAsynqMessage(out)
	require.NoError(t, err)
	require.Equal(t, "redacted", m.ErrorMsg)
	_, err = DecodeAsynqMessage([]byte{0xff})
	require.Error(t, err)
}
