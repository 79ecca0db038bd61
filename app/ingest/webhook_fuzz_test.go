package ingest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/opspine/opspine/app/ingest"
)

// FuzzWebhookRequest feeds the webhook endpoint's reading of a delivery: Shopify's
// headers (topic, shop domain, webhook id, trigger time, signature), the body and the
// shop's comma-separated secrets. It never panics; a delivery always has a webhook id
// and a trimmed lower-case shop domain, and never keeps the signature, Authorization
// or Cookie; the signature check accepts exactly a base64 HMAC-SHA256 of the body
// under one of the secrets, and accepts the one Shopify would send.
func FuzzWebhookRequest(f *testing.F) {
	body := `{"id":9007199254740993,"currency":"GBP","total_price":"58.99"}`
	secret := "shpss_test_webhook_secret"
	f.Add([]byte(body), "orders/create", "opspine-test.myshopify.com", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
		"2026-11-20T09:15:03.123Z", ingest.SignShopifyBody([]byte(body), secret), secret+", old_secret")
	f.Add([]byte(body), " ORDERS/updated ", " OPSPINE-Test.MyShopify.com ", "", "not a time", "bad signature", secret)
	f.Add([]byte(``), "", "", "", "", "", "")
	f.Add([]byte(body), "customers/redact", "x.myshopify.com", "id", "2026-11-20T09:15:03-05:00",
		ingest.SignShopifyBody([]byte(body), "new"), " , new ,old,, ")
	f.Add([]byte(body), "shop/redact", "x", "id", "", strings.TrimRight(ingest.SignShopifyBody([]byte(body), "s"), "="), "s")
	f.Fuzz(func(t *testing.T, body []byte, topic, domain, webhookID, triggeredAt, signature, secretsCSV string) {
		h := http.Header{}
		h.Set("X-Shopify-Topic", topic)
		h.Set("X-Shopify-Shop-Domain", domain)
		h.Set("X-Shopify-Webhook-Id", webhookID)
		h.Set("X-Shopify-Triggered-At", triggeredAt)
		h.Set("X-Shopify-Hmac-Sha256", signature)
		h.Set("Authorization", "Bearer x")
		h.Set("Cookie", "pb_auth=x")
		h.Set("Content-Type", "application/json")

		d := ingest.DeliveryFromRequest(h, body)
		if d.WebhookID == "" || d.WebhookID != strings.TrimSpace(d.WebhookID) {
			t.Fatalf("webhook id %q", d.WebhookID)
		}
		if d.ShopDomain != strings.ToLower(strings.TrimSpace(domain)) {
			t.Fatalf("shop domain %q from %q", d.ShopDomain, domain)
		}
		if d.Topic != strings.TrimSpace(topic) || d.Source != ingest.SourceWebhook || string(d.Payload) != string(body) {
			t.Fatalf("delivery %+v", d)
		}
		for name := range d.Headers {
			switch strings.ToLower(name) {
			case "x-shopify-hmac-sha256", "authorization", "cookie":
				t.Fatalf("header %s kept", name)
			}
		}

		secrets := ingest.SplitSecrets(secretsCSV)
		for _, s := range secrets {
			if s == "" || s != strings.TrimSpace(s) || strings.Contains(s, ",") {
				t.Fatalf("secret %q from %q", s, secretsCSV)
			}
			if !ingest.VerifyShopifyHMAC(body, ingest.SignShopifyBody(body, s), secrets) {
				t.Fatalf("Shopify's own signature under %q refused", s)
			}
		}
		got := ingest.VerifyShopifyHMAC(body, signature, secrets)
		want := false
		if sig, err := base64.StdEncoding.DecodeString(signature); err == nil {
			for _, s := range secrets {
				mac := hmac.New(sha256.New, []byte(s))
				mac.Write(body)
				want = want || hmac.Equal(mac.Sum(nil), sig)
			}
		}
		if got != want {
			t.Fatalf("signature %q accepted=%v, want %v", signature, got, want)
		}
		if got && len(secrets) == 0 {
			t.Fatal("accepted without a secret")
		}
	})
}
