package shopify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Seeds shaped like Shopify's non-order webhook topics (app/testkit/payloads.go makes
// the same shapes for the end-to-end tests; testkit imports this package, so they are
// written out here).
var webhookSeeds = []string{
	// refunds/create
	`{"id": 9007199254790101, "order_id": 9007199254740993, "created_at": "2026-11-21T10:00:00+00:00", "note": "Damaged in transit",
	  "restock": false, "user_id": 9007199254799999,
	  "refund_line_items": [{"id": 9007199254790001, "line_item_id": 9007199254750001, "quantity": 2, "restock_type": "no_restock", "subtotal": "43.20"}],
	  "transactions": [{"id": 9007199254791001, "kind": "refund", "status": "success", "amount": "58.99", "currency": "GBP", "gateway": "shopify_payments"}]}`,
	`{"id":"1","order_id":"gid://shopify/Order/2","transactions":[{"kind":"refund","status":"","amount":1000,"currency":"JPY"}]}`,
	// customers/create, customers/update
	`{"id": 9007199254741123, "email": "Jane.Doe@example.com", "created_at": "2026-03-02T10:00:00+00:00", "updated_at": "2026-11-20T09:15:00-05:00",
	  "first_name": "Jane", "last_name": "Doe", "phone": "+447700900123", "state": "enabled",
	  "email_marketing_consent": {"state": "not_subscribed"}, "accepts_marketing": true,
	  "default_address": {"address1": "12 Acacia Avenue", "city": "Bristol", "zip": "BS1 4DJ", "country_code": "GB"}}`,
	`{"id":1,"email":null,"first_name":null,"updated_at":null,"default_address":null}`,
	// customers/redact
	`{"shop_id": 954889, "shop_domain": "opspine-test.myshopify.com",
	  "customer": {"id": 9007199254741123, "email": "jane.doe@example.com", "phone": "+447700900123"}, "orders_to_redact": [9007199254740993, 9007199254740994]}`,
	// customers/data_request
	`{"shop_id": 954889, "shop_domain": "opspine-test.myshopify.com",
	  "customer": {"id": 9007199254741123, "email": "jane.doe@example.com", "phone": "+447700900123"}, "orders_requested": [9007199254740993],
	  "data_request": {"id": 9999}}`,
	// shop/redact
	`{"shop_id": 954889, "shop_domain": "opspine-test.myshopify.com"}`,
	`{"id": 18446744073709551616}`, `{"id": -1}`, `{"id": "gid://shopify/Customer/"}`, `{"created_at": "2026-13-01T00:00:00Z"}`, `[]`, `null`,
}

// validID: an accepted Shopify id is empty or a whole number that fits in 64 bits.
func validID(id ID) bool {
	if id == "" {
		return true
	}
	_, err := strconv.ParseUint(string(id), 10, 64)
	return err == nil
}

func validTime(t Time) bool { return t.IsZero() || t.Location() == time.UTC }

// FuzzWebhookPayload covers the payloads of every non-order topic opspine applies
// (refunds/create, customers/create|update, customers/data_request, customers/redact,
// shop/redact; app/ingest decodes them into these types): decoding never panics, and
// whatever decodes has only whole-number ids, UTC times, trimmed amounts that read in
// minor units or fail with an error, and JSON-valid raw fields.
func FuzzWebhookPayload(f *testing.F) {
	for _, s := range webhookSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var r Refund
		if json.Unmarshal(payload, &r) == nil {
			if !validID(r.ID) || !validID(r.OrderID) || !validTime(r.CreatedAt) {
				t.Fatalf("refund accepted with id %q order %q at %v", r.ID, r.OrderID, r.CreatedAt)
			}
			for _, l := range r.RefundLineItems {
				if !validID(l.LineItemID) {
					t.Fatalf("refund line item id %q", l.LineItemID)
				}
			}
			for _, tr := range r.Transactions {
				if string(tr.Amount) != strings.TrimSpace(string(tr.Amount)) {
					t.Fatalf("amount %q not trimmed", tr.Amount)
				}
				cur := tr.Currency
				if cur == "" {
					cur = "GBP"
				}
				if n, err := tr.Amount.MinorUnits(cur); err == nil && n != 0 && tr.Amount == "" {
					t.Fatalf("empty amount read as %d", n)
				}
			}
		}
		var c Customer
		if json.Unmarshal(payload, &c) == nil {
			if !validID(c.ID) || !validTime(c.UpdatedAt) {
				t.Fatalf("customer accepted with id %q updated %v", c.ID, c.UpdatedAt)
			}
			if len(c.DefaultAddress) > 0 && !json.Valid(c.DefaultAddress) {
				t.Fatalf("default_address %q is not JSON", c.DefaultAddress)
			}
		}
		var req ComplianceRequest
		if json.Unmarshal(payload, &req) == nil {
			ids := append(append([]ID{req.ShopID}, req.OrdersRequested...), req.OrdersToRedact...)
			if req.Customer != nil {
				ids = append(ids, req.Customer.ID)
			}
			if req.DataRequest != nil {
				ids = append(ids, req.DataRequest.ID)
			}
			for _, id := range ids {
				if !validID(id) {
					t.Fatalf("compliance request accepted with id %q", id)
				}
			}
		}
	})
}

// FuzzRedactPayload: redaction never panics, always leaves valid JSON in which every
// personal field (personalKeys, personalObjects, line item property values) is erased
// wherever it sits, and is idempotent.
func FuzzRedactPayload(f *testing.F) {
	f.Add(fixtureOrder(f))
	f.Add([]byte(`{"customer":{"email":"a@b.c"},"line_items":[{"properties":{"x":"y"}}]}`))
	f.Add([]byte(`not json`))
	for _, s := range webhookSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out := RedactPayload(payload)
		if !json.Valid(out) {
			t.Fatalf("redacted payload is not JSON: %s", out)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if where := personalDataLeft(v, "$"); where != "" {
			t.Fatalf("personal data left at %s: %s", where, out)
		}
		if again := RedactPayload(out); !bytes.Equal(again, out) {
			t.Fatalf("redaction is not idempotent:\n%s\n%s", out, again)
		}
	})
}

// personalDataLeft returns the path of a personal value still present in v, or "".
func personalDataLeft(v any, path string) string {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			p := path + "." + k
			switch {
			case personalObjects[k]:
				if child != nil {
					return p
				}
			case personalKeys[k]:
				if child != nil && child != "[redacted]" {
					return p
				}
			case k == "properties":
				if where := propertiesLeft(child, p); where != "" {
					return where
				}
			default:
				if where := personalDataLeft(child, p); where != "" {
					return where
				}
			}
		}
	case []any:
		for i, child := range t {
			if where := personalDataLeft(child, path+"["+strconv.Itoa(i)+"]"); where != "" {
				return where
			}
		}
	}
	return ""
}

// propertiesLeft: a properties value keeps its names only: every value is "[redacted]".
func propertiesLeft(v any, path string) string {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if child != "[redacted]" {
				return path + "." + k
			}
		}
	case []any:
		for i, p := range t {
			pp := path + "[" + strconv.Itoa(i) + "]"
			m, ok := p.(map[string]any)
			if !ok {
				if p != nil && p != "[redacted]" {
					return pp
				}
				continue
			}
			for k, child := range m {
				switch k {
				case "name":
				case "value":
					if child != "[redacted]" {
						return pp + ".value"
					}
				default:
					if where := personalDataLeft(map[string]any{k: child}, pp); where != "" {
						return where
					}
				}
			}
		}
	case nil, string, json.Number, bool:
		// a scalar where properties belong: nothing in it has a name to keep
		if t != nil && t != "[redacted]" {
			return path
		}
	}
	return ""
}

const fuzzAdminToken = "shpat_fuzz_admin_token_0123456789"

// roundTripFunc answers requests without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzAdminOrdersPage feeds the reconcile job's Admin REST client one answer of
// Shopify's orders endpoint: a status, a body, a Link header and a Retry-After. It
// never panics; it sends requests (and so the token) only to the shop's own host, a
// bounded number of times, waiting at most MaxRetryAfter each time; every order it
// hands on is a JSON value; an error never contains the token.
func FuzzAdminOrdersPage(f *testing.F) {
	ord := `{"id":9007199254740993,  "name":"#1001", "total_price":"58.99", "updated_at":"2026-11-20T09:15:03Z"}`
	next := `<https://shop.example/admin/api/2025-10/orders.json?limit=250&page_info=eyJsYXN0X2lkIjo0fQ>; rel="next"`
	both := `<https://shop.example/admin/api/2025-10/orders.json?page_info=abc>; rel="previous", ` + next
	f.Add(uint8(0), []byte(`{"orders":[`+ord+`,`+ord+`]}`), next, "")
	f.Add(uint8(0), []byte(`{"orders":[]}`), both, "")
	f.Add(uint8(0), []byte(`{"orders":[`+ord+`]}`), `<https://evil.example/admin/api/2025-10/orders.json?page_info=x>; rel="next"`, "")
	f.Add(uint8(0), []byte(`{"orders":[`+ord+`]}`), `<//evil.example/x>; rel=next`, "")
	f.Add(uint8(0), []byte(`{"orders":[`+ord+`]}`), `https://shop.example/x; rel="next"`, "")
	f.Add(uint8(0), []byte(`{"orders":[{"id":1}`), "", "")
	f.Add(uint8(0), []byte(`{"orders":{"id":1}}`), "", "")
	f.Add(uint8(1), []byte(`{"errors":"Exceeded 2 calls per second for api client."}`), "", "2.0")
	f.Add(uint8(1), []byte(``), "", "NaN")
	f.Add(uint8(1), []byte(``), "", "1e308")
	f.Add(uint8(1), []byte(``), "", "-1")
	f.Add(uint8(2), []byte(`<html>502 Bad Gateway</html>`), "", "")
	f.Add(uint8(3), []byte(`{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password) {token}"}`), "", "")
	statuses := []int{http.StatusOK, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusUnauthorized}
	f.Fuzz(func(t *testing.T, status uint8, body []byte, link, retry string) {
		if d := retryAfter(retry); d < 0 || d > MaxRetryAfter {
			t.Fatalf("retryAfter(%q) = %v", retry, d)
		}
		base, _ := url.Parse("https://shop.example/")
		if u, err := nextPage(base, link); err == nil && u != nil && (u.Scheme != "https" || u.Host != "shop.example") {
			t.Fatalf("next page %s leaves the shop", u)
		}

		body = bytes.ReplaceAll(body, []byte("{token}"), []byte(fuzzAdminToken)) // a proxy echoing the token
		requests := 0
		transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			requests++
			if r.URL.Scheme != "https" || r.URL.Host != "shop.example" {
				t.Fatalf("request (with the token) sent to %s", r.URL)
			}
			h := http.Header{}
			code, b := http.StatusOK, []byte(`{"orders":[]}`)
			if requests == 1 || status%4 != 0 {
				code, b = statuses[status%4], body
				h.Set("Link", link)
				h.Set("Retry-After", retry)
			}
			return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewReader(b)), Request: r}, nil
		})
		var waited []time.Duration
		c := &AdminClient{BaseURL: "https://shop.example", Token: fuzzAdminToken, APIVersion: "2025-10",
			HTTP:  &http.Client{Transport: transport},
			Sleep: func(_ context.Context, d time.Duration) error { waited = append(waited, d); return nil }}
		pages := 0
		err := c.ListOrdersUpdatedSince(context.Background(), time.Unix(0, 0), func(orders []json.RawMessage) error {
			pages++
			for _, o := range orders {
				if !json.Valid(o) {
					t.Fatalf("order %q is not JSON", o)
				}
			}
			return nil
		})
		if requests > MaxRateLimitedAttempts+MaxServerErrorAttempts+1 || pages > 2 {
			t.Fatalf("%d requests, %d pages", requests, pages)
		}
		for _, d := range waited {
			if d < 0 || d > MaxRetryAfter {
				t.Fatalf("waited %v", d)
			}
		}
		if err != nil && strings.Contains(err.Error(), fuzzAdminToken) {
			t.Fatalf("error shows the token: %v", err)
		}
		if err == nil && status%4 != 0 {
			t.Fatalf("HTTP %d accepted", statuses[status%4])
		}
	})
}
