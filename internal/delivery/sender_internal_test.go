package delivery

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/postbackhq/postback/internal/config"
	"github.com/postbackhq/postback/internal/netguard"
)

// A rendered URL that does not parse fails the attempt with a reason that
// does not quote the URL (its query carries tokens and personal data).
func TestSender_unparseableURLNotQuoted(t *testing.T) {
	s := &Sender{Client: netguard.New(netguard.Config{AllowPrivate: true})}
	res, resp := s.Send(context.Background(), &config.Partner{ID: "p"}, &config.Request{
		Method: "GET", URL: "http://partner.example/c%zz?token=s3cret&email=a@b.example",
	}, "dlv_1")
	require.Nil(t, resp)
	require.ErrorContains(t, res.Err, "build request")
	require.ErrorContains(t, res.Err, "invalid URL escape")
	require.NotContains(t, res.Err.Error(), "s3cret")
	require.NotContains(t, res.Err.Error(), "a@b.example")
}
