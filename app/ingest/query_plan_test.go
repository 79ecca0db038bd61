package ingest_test

import (
	"strings"
	"testing"

	"github.com/opspine/opspine/app/testkit"
)

// Every query on the hot path and in redaction searches an index: a scan of customers
// per delivery was most of the processing time at ten thousand customers.
func TestHotQueriesUseIndexes(t *testing.T) {
	app := testkit.NewApp(t)
	queries := []string{
		`SELECT id FROM customers WHERE shop = 'a' AND shopify_customer_id = 'x' AND shopify_customer_id != '' LIMIT 1`,
		`SELECT id FROM customers WHERE shop = 'a' AND email = 'x' AND email != '' AND (shopify_customer_id = '' OR 'y' = '') ORDER BY created LIMIT 1`,
		`SELECT id FROM orders WHERE shop = 'a' AND shopify_order_id = 'x'`,
		`SELECT id FROM products WHERE sku = 'x'`,
		`SELECT id, payload FROM webhook_inbox WHERE shop_domain = 'a' AND resource_id IN ('order:1') AND resource_id != ''`,
		`UPDATE dead_letters SET payload = 'x' WHERE inbox = 'a' AND inbox != ''`,
		`SELECT id FROM webhook_inbox WHERE (status = 'failed' AND next_attempt_at <= 'x') OR (status = 'pending' AND next_attempt_at <= 'y') ORDER BY next_attempt_at LIMIT 5`,
		`SELECT id FROM webhook_inbox WHERE shop_domain = 'a' AND webhook_id = 'b'`,
	}
	for _, q := range queries {
		var plan []struct {
			Detail string `db:"detail"`
		}
		if err := app.DB().NewQuery("EXPLAIN QUERY PLAN " + q).All(&plan); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, p := range plan {
			if strings.HasPrefix(p.Detail, "SCAN ") && !strings.Contains(p.Detail, "USING") {
				t.Errorf("%s\n  scans: %s", q, p.Detail)
			}
		}
	}
}
