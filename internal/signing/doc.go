// Package signing signs outbound postbacks with Standard Webhooks signatures
// (https://www.standardwebhooks.com): the headers webhook-id, webhook-timestamp
// and webhook-signature, where the signature is
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
//
// A [Signer] is built once from a partner's configured secrets, decoding them
// once, and then signs any number of requests from any number of goroutines.
// With more than one secret it emits one signature per secret, space-separated,
// so a partner can rotate its secret without rejecting postbacks in between.
//
// Secrets: a secret that starts with "whsec_" is the Standard Webhooks form and
// the rest is decoded as standard base64 (the reference libraries do the same);
// any other string is used as the HMAC key byte for byte. Partners that hand
// out a plain shared string therefore work as given, and a partner verifying
// with a reference library passes it the "whsec_" form of the same key.
package signing
