// Package examples builds Shopify payloads from Shopify's own examples (ids beyond
// 2^53, money as strings, properties as array or object, null fulfilment status) for
// the tests (through app/testkit) and for `opspine bench`. It imports no testing code,
// so the production binary, which carries the bench, can link it.
package examples

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"time"
)

//go:embed order.json
var orderFixture []byte

// Doc is a decoded JSON object whose numbers stay exact (json.Number).
type Doc map[string]any

func decode(b []byte) Doc {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var d Doc
	if err := dec.Decode(&d); err != nil {
		panic(err)
	}
	return d
}

// JSON encodes the document.
func (d Doc) JSON() []byte {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// Order returns the fixture order (#1001, id 9007199254740993, two line items,
// customer 9007199254741123, financial_status pending) with changes applied.
func Order(changes ...func(Doc)) Doc {
	d := decode(orderFixture)
	for _, c := range changes {
		c(d)
	}
	return d
}

// WithOrderID gives the order (and, derived from it, its line items) another id and number.
func WithOrderID(id int64) func(Doc) {
	return func(d Doc) {
		d["id"] = json.Number(fmt.Sprint(id))
		d["order_number"] = json.Number(fmt.Sprint(1000 + id%1000000))
		d["name"] = fmt.Sprintf("#%d", 1000+id%1000000)
		for i, li := range d["line_items"].([]any) {
			li.(map[string]any)["id"] = json.Number(fmt.Sprint(id*10 + int64(i) + 1))
		}
	}
}

// WithStatus sets financial_status and updated_at.
func WithStatus(financial string, updated time.Time) func(Doc) {
	return func(d Doc) {
		d["financial_status"] = financial
		d["updated_at"] = updated.Format(time.RFC3339)
	}
}

// WithCancelled marks the order cancelled at t (also its updated_at).
func WithCancelled(t time.Time) func(Doc) {
	return func(d Doc) {
		d["cancelled_at"] = t.Format(time.RFC3339)
		d["cancel_reason"] = "customer"
		d["updated_at"] = t.Format(time.RFC3339)
	}
}

// WithCustomer sets the embedded customer's id and email.
func WithCustomer(id int64, email string) func(Doc) {
	return func(d Doc) {
		c := d["customer"].(map[string]any)
		c["id"] = json.Number(fmt.Sprint(id))
		c["email"] = email
		d["email"] = email
		d["contact_email"] = email
	}
}

// Refund is a refunds/create payload for orderID refunding amount ("58.99").
func Refund(refundID int64, orderID string, amount string) Doc {
	return decode([]byte(fmt.Sprintf(`{
	  "id": %d, "order_id": %s, "created_at": "2026-11-21T10:00:00+00:00", "note": "Damaged in transit",
	  "restock": false, "user_id": 9007199254799999,
	  "refund_line_items": [{"id": 9007199254790001, "line_item_id": 9007199254750001, "quantity": 2, "restock_type": "no_restock", "subtotal": "43.20"}],
	  "transactions": [{"id": 9007199254791001, "kind": "refund", "status": "success", "amount": "%s", "currency": "GBP", "gateway": "shopify_payments"}]
	}`, refundID, orderID, amount)))
}

// Customer is a customers/create or customers/update payload.
func Customer(id int64, email string, updated time.Time) Doc {
	return decode([]byte(fmt.Sprintf(`{
	  "id": %d, "email": %q, "created_at": "2026-03-02T10:00:00+00:00", "updated_at": %q,
	  "first_name": "Jane", "last_name": "Doe", "phone": "+447700900123", "state": "enabled",
	  "email_marketing_consent": {"state": "not_subscribed"},
	  "default_address": {"address1": "12 Acacia Avenue", "city": "Bristol", "zip": "BS1 4DJ", "country_code": "GB"}
	}`, id, email, updated.Format(time.RFC3339))))
}

// CustomerRedact is a customers/redact payload.
func CustomerRedact(shop string, customerID int64, email string, orderIDs ...string) Doc {
	ids := numbers(orderIDs)
	return decode([]byte(fmt.Sprintf(`{"shop_id": 954889, "shop_domain": %q,
	  "customer": {"id": %d, "email": %q, "phone": "+447700900123"}, "orders_to_redact": %s}`, shop, customerID, email, ids)))
}

// DataRequest is a customers/data_request payload.
func DataRequest(shop string, customerID int64, email string, orderIDs ...string) Doc {
	ids := numbers(orderIDs)
	return decode([]byte(fmt.Sprintf(`{"shop_id": 954889, "shop_domain": %q,
	  "customer": {"id": %d, "email": %q, "phone": "+447700900123"}, "orders_requested": %s,
	  "data_request": {"id": 9999}}`, shop, customerID, email, ids)))
}

// numbers renders ids as a JSON array of numbers, as Shopify sends them.
func numbers(ids []string) []byte {
	ns := make([]json.Number, len(ids))
	for i, id := range ids {
		ns[i] = json.Number(id)
	}
	b, _ := json.Marshal(ns)
	return b
}
