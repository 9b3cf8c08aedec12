package signing_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/postbackhq/postback/internal/signing"
)

func ExampleSigner_Header() {
	// Two secrets while a partner rotates: every postback carries both signatures.
	signer, err := signing.NewSigner([]string{
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=",
	})
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	signer.Header(h, "dlv_2f1c", time.Unix(1764095481, 0), []byte(`{"click":"abc"}`))
	fmt.Println(h.Get("webhook-id"))
	fmt.Println(h.Get("webhook-timestamp"))
	fmt.Println(h.Get("webhook-signature"))
	// Output:
	// dlv_2f1c
	// 1764095481
	// v1,M3+F110nU+PnGuaPruqhu37nTECxg8YTuORPv+Gx/Ko= v1,WY50mLYI3M19oR7ZFwCBqyUb9PcoY1dX9pMBdv8ff1E=
}
