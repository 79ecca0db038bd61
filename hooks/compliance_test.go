package hooks_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/testkit"
)

const customerID = 9007199254741123

// personal strings of the fixture order that must be gone after redaction
var personal = []string{"jane.doe@example.com", "Jane", "Acacia", "BS1 4DJ", "+447700900123", "203.0.113.42", "Rex", "Good boy", "4242", "neighbour"}

func TestCustomerRedactErasesPersonalDataButKeepsAmountsAndSKUs(t *testing.T) {
	s := start(t, nil)
	other := testkit.Order(testkit.WithOrderID(555), testkit.WithCustomer(42, "someone.else@example.com"))
	for _, d := range []testkit.Delivery{
		{Topic: "orders/create", Body: testkit.Order().JSON()},
		{Topic: "orders/paid", Body: testkit.Order(testkit.WithStatus("paid", t0.Add(time.Hour))).JSON()},
		{Topic: "customers/update", Body: testkit.Customer(customerID, "Jane.Doe@example.com", t0.Add(2*time.Hour)).JSON()},
		{Topic: "orders/create", Body: other.JSON()},
	} {
		if code := s.Deliver(t, d); code != 200 {
			t.Fatalf("%s: %d", d.Topic, code)
		}
	}
	s.WaitSettled(t)

	redact := testkit.CustomerRedact(testkit.Shop, customerID, "Jane.Doe@example.com", orderID)
	if code := s.Deliver(t, testkit.Delivery{Topic: "customers/redact", Body: redact.JSON()}); code != 200 {
		t.Fatalf("redact: %d", code)
	}
	s.WaitSettled(t)

	assertNoPersonalData(t, s, `SELECT email || first_name || last_name || phone || COALESCE(default_address, '') FROM customers WHERE shopify_customer_id = '9007199254741123'`)
	assertNoPersonalData(t, s, `SELECT email || note || COALESCE(shipping_address, '') FROM orders WHERE shopify_order_id = '`+orderID+`'`)
	assertNoPersonalData(t, s, `SELECT group_concat(properties) FROM order_items WHERE shopify_line_item_id LIKE '90071992547500%'`)
	assertNoPersonalData(t, s, `SELECT group_concat(payload, ' ') FROM webhook_inbox WHERE resource_id != 'order:555'`)

	o := loadOrder(t, s, orderID)
	if o.Total != 5899 || o.Status != "paid" {
		t.Errorf("amounts and status must stay: %+v", o)
	}
	var skus string
	s.App.DB().NewQuery(`SELECT group_concat(sku) FROM order_items WHERE "order" = {:id}`).Bind(dbx.Params{"id": o.ID}).Row(&skus)
	if !strings.Contains(skus, "PR-BEEF-2KG") || !strings.Contains(skus, "PR-WINGS-1KG") {
		t.Errorf("SKUs must stay, got %q", skus)
	}
	var payload string
	s.App.DB().NewQuery(`SELECT payload FROM webhook_inbox WHERE topic = 'orders/paid'`).Row(&payload)
	if !strings.Contains(payload, `"total_price":"58.99"`) || !strings.Contains(payload, `"sku":"PR-BEEF-2KG"`) || !json.Valid([]byte(payload)) {
		t.Errorf("redacted payload must stay valid JSON with amounts and SKUs: %s", payload)
	}
	// someone else's order is untouched
	if got := loadOrder(t, s, "555"); got.Email != "someone.else@example.com" {
		t.Errorf("another customer's order was redacted: %+v", got)
	}

	// A late retry of an old delivery must not bring the personal data back.
	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/updated", Body: testkit.Order(testkit.WithStatus("paid", t0.Add(3*time.Hour))).JSON()}); code != 200 {
		t.Fatal(code)
	}
	s.WaitSettled(t)
	assertNoPersonalData(t, s, `SELECT email || note || COALESCE(shipping_address, '') FROM orders WHERE shopify_order_id = '`+orderID+`'`)
	assertNoPersonalData(t, s, `SELECT group_concat(payload, ' ') FROM webhook_inbox WHERE resource_id != 'order:555'`)
	assertNoPersonalData(t, s, `SELECT group_concat(email) FROM customers WHERE email != 'someone.else@example.com'`)
}

func assertNoPersonalData(t *testing.T, s *testkit.Server, query string) {
	t.Helper()
	var got *string
	if err := s.App.DB().NewQuery(query).Row(&got); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if got == nil {
		return
	}
	for _, p := range personal {
		if strings.Contains(strings.ToLower(*got), strings.ToLower(p)) {
			t.Errorf("personal data %q still present in: %s\n%.400s", p, query, *got)
		}
	}
}

func TestShopRedactErasesEveryCustomerOfTheShop(t *testing.T) {
	s := start(t, nil)
	s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON()})
	s.Deliver(t, testkit.Delivery{Topic: "app/uninstalled", Body: []byte(`{"id": 954889, "domain": "protocol-raw.myshopify.com"}`)})
	s.WaitSettled(t)
	s.Deliver(t, testkit.Delivery{Topic: "shop/redact", Body: []byte(`{"shop_id": 954889, "shop_domain": "protocol-raw.myshopify.com"}`)})
	s.WaitSettled(t)
	assertNoPersonalData(t, s, `SELECT group_concat(email || first_name || phone) FROM customers`)
	assertNoPersonalData(t, s, `SELECT group_concat(payload, ' ') FROM webhook_inbox`)
	if n := testkit.Count(t, s.App, "shops", "uninstalled_at != '' AND redacted_at != ''", nil); n != 1 {
		t.Errorf("shop not marked uninstalled and redacted")
	}
	if o := loadOrder(t, s, orderID); o.Total != 5899 {
		t.Errorf("order amounts must stay, got %+v", o)
	}
}

func TestDataRequestIsRecordedAndStaffExportTheCustomersDataAsJSON(t *testing.T) {
	s := start(t, nil)
	s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON()})
	s.WaitSettled(t)
	s.Deliver(t, testkit.Delivery{Topic: "customers/data_request", Body: testkit.DataRequest(testkit.Shop, customerID, "jane.doe@example.com", orderID).JSON()})
	s.WaitSettled(t)

	var req struct {
		ID       string `db:"id"`
		Customer string `db:"customer"`
		Status   string `db:"status"`
	}
	if err := s.App.DB().NewQuery(`SELECT id, customer, status FROM data_requests`).One(&req); err != nil {
		t.Fatalf("no data request recorded: %v", err)
	}
	if req.Customer == "" || req.Status != "open" {
		t.Fatalf("data request %+v", req)
	}
	operator := testkit.Token(t, s.App, "operator")
	if code, _ := s.Call(t, http.MethodPost, "/api/ops/data-requests/"+req.ID+"/export", operator, ""); code != http.StatusForbidden {
		t.Errorf("operator export: %d, want 403", code)
	}
	manager := testkit.Token(t, s.App, "manager")
	code, body := s.Call(t, http.MethodPost, "/api/ops/data-requests/"+req.ID+"/export", manager, "")
	if code != 200 {
		t.Fatalf("export: %d %s", code, body)
	}
	var export struct {
		Customer map[string]any   `json:"customer"`
		Orders   []map[string]any `json:"orders"`
	}
	if err := json.Unmarshal(body, &export); err != nil {
		t.Fatal(err)
	}
	if export.Customer["email"] != "jane.doe@example.com" || len(export.Orders) != 1 ||
		export.Orders[0]["shopify_order_id"] != orderID || len(export.Orders[0]["order_items"].([]any)) != 2 {
		t.Fatalf("export is missing the customer's data: %s", body)
	}
	if n := testkit.Count(t, s.App, "data_requests", "status = 'exported' AND exported_by LIKE 'staff:%'", nil); n != 1 {
		t.Errorf("data request not marked exported by the staff member")
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind = 'customer.data_exported'", nil); n != 1 {
		t.Errorf("export not audited")
	}
	if code, _ := s.Call(t, http.MethodGet, "/api/ops/customers/nope/export", manager, ""); code != 404 {
		t.Errorf("unknown customer export: %d, want 404", code)
	}
}
