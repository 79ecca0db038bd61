package ingest

import (
	"testing"
	"time"

	"github.com/opspine/opspine/app/shopify"
)

func TestVerifyShopifyHMAC(t *testing.T) {
	body := []byte(`{"id":1}`)
	good := SignShopifyBody(body, "new")
	cases := []struct {
		name      string
		signature string
		secrets   []string
		want      bool
	}{
		{"current secret", good, []string{"new"}, true},
		{"second of two during rotation", good, []string{"old", "new"}, true},
		{"retired secret", SignShopifyBody(body, "old"), []string{"new"}, false},
		{"empty secret list", good, nil, false},
		{"empty secret never matches", SignShopifyBody(body, ""), []string{""}, false},
		{"not base64", "***", []string{"new"}, false},
		{"truncated", good[:20], []string{"new"}, false},
		{"other body", SignShopifyBody([]byte(`{"id":2}`), "new"), []string{"new"}, false},
	}
	for _, c := range cases {
		if got := VerifyShopifyHMAC(body, c.signature, c.secrets); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDeriveOrderStatus(t *testing.T) {
	at := shopify.Time{Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	cases := []struct {
		financial       string
		cancelled       bool
		total, refunded int64
		want            string
	}{
		{"pending", false, 5899, 0, OrderPending},
		{"authorized", false, 5899, 0, OrderPending},
		{"partially_paid", false, 5899, 0, OrderPending},
		{"paid", false, 5899, 0, OrderPaid},
		{"partially_refunded", false, 5899, 1000, OrderPaid},
		{"paid", true, 5899, 0, OrderCancelled},
		{"voided", false, 5899, 0, OrderCancelled},
		{"refunded", true, 5899, 5899, OrderRefunded},
		{"paid", false, 5899, 5899, OrderRefunded}, // refunds recorded before orders/updated caught up
		{"paid", false, 0, 0, OrderPaid},           // a free order is not "refunded"
	}
	for _, c := range cases {
		o := shopify.Order{FinancialStatus: c.financial}
		if c.cancelled {
			o.CancelledAt = at
		}
		if got := DeriveOrderStatus(o, c.total, c.refunded); got != c.want {
			t.Errorf("%+v: %s, want %s", c, got, c.want)
		}
	}
}
