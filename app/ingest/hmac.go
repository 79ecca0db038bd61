// Package ingest holds the rules of Shopify ingestion: verify a delivery, commit it to
// webhook_inbox before answering, then turn it into customers, orders and line items,
// exactly once, whatever order deliveries arrive in.
package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// VerifyShopifyHMAC reports whether signature (the X-Shopify-Hmac-Sha256 header: base64
// HMAC-SHA256 of the raw body) matches one of secrets. Several secrets allow rotation:
// the old and the new one are both accepted until the old one is removed.
// Every comparison is constant-time.
func VerifyShopifyHMAC(body []byte, signature string, secrets []string) bool {
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	ok := false
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), got) {
			ok = true // keep going: the time taken does not say which secret matched
		}
	}
	return ok
}

// SignShopifyBody returns the signature Shopify would send for body; used by the
// benchmark and tests that play Shopify's part.
func SignShopifyBody(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
