package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaultsAndSecretsForRotation(t *testing.T) {
	c, err := Load(env(map[string]string{
		"OPSPINE_SHOPIFY_SHOP_DOMAIN":    "Protocol-Raw.myshopify.com",
		"OPSPINE_SHOPIFY_WEBHOOK_SECRET": " old , new ,",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ShopifyShopDomain != "protocol-raw.myshopify.com" || strings.Join(c.ShopifyWebhookSecrets, "|") != "old|new" {
		t.Errorf("shop %q secrets %q", c.ShopifyShopDomain, c.ShopifyWebhookSecrets)
	}
	if c.Timezone.String() != "Europe/London" || c.WebhookMaxAttempts != 8 || c.WebhookRetryBase != 30*time.Second ||
		c.WebhookRetrySchedule != "* * * * *" || c.WebhookMaxBodyBytes != 2<<20 {
		t.Errorf("defaults %+v", c)
	}
}

func TestLoadRejectsBadValuesWithTheVariableName(t *testing.T) {
	cases := map[string]map[string]string{
		"OPSPINE_TIMEZONE":               {"OPSPINE_TIMEZONE": "Mars/Olympus"},
		"OPSPINE_WEBHOOK_MAX_ATTEMPTS":   {"OPSPINE_WEBHOOK_MAX_ATTEMPTS": "many"},
		"OPSPINE_WEBHOOK_RETRY_BASE":     {"OPSPINE_WEBHOOK_RETRY_BASE": "-1s"},
		"OPSPINE_SHOPIFY_WEBHOOK_SECRET": {"OPSPINE_SHOPIFY_SHOP_DOMAIN": "a.myshopify.com"},
	}
	for name, vars := range cases {
		if _, err := Load(env(vars)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err %v, want one naming it", name, err)
		}
	}
}
