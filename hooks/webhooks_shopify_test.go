package hooks_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/testkit"
)

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func start(t *testing.T, env map[string]string) *testkit.Server {
	t.Helper()
	return testkit.StartServer(t, testkit.Config(t, env), t0)
}

type orderRow struct {
	ID            string `db:"id"`
	ShopifyID     string `db:"shopify_order_id"`
	Number        string `db:"order_number"`
	Status        string `db:"status"`
	Currency      string `db:"currency"`
	Email         string `db:"email"`
	Subtotal      int64  `db:"subtotal_minor"`
	Discount      int64  `db:"discount_minor"`
	Shipping      int64  `db:"shipping_minor"`
	Tax           int64  `db:"tax_minor"`
	Total         int64  `db:"total_minor"`
	Refunded      int64  `db:"refunded_minor"`
	Customer      string `db:"customer"`
	HasUnknownSKU bool   `db:"has_unknown_sku"`
	Fulfillment   string `db:"fulfillment_status"`
	Address       string `db:"shipping_address"`
	Note          string `db:"note"`
}

func loadOrder(t *testing.T, s *testkit.Server, shopifyID string) orderRow {
	t.Helper()
	var o orderRow
	err := s.App.DB().NewQuery(`SELECT id, shopify_order_id, order_number, status, currency, email, subtotal_minor,
		discount_minor, shipping_minor, tax_minor, total_minor, refunded_minor, customer, has_unknown_sku, fulfillment_status,
		COALESCE(shipping_address, 'null') AS shipping_address, note
		FROM orders WHERE shopify_order_id = {:id}`).Bind(dbx.Params{"id": shopifyID}).One(&o)
	if err != nil {
		t.Fatalf("load order %s: %v", shopifyID, err)
	}
	return o
}

func addProduct(t *testing.T, s *testkit.Server, sku string) string {
	t.Helper()
	col, _ := s.App.FindCollectionByNameOrId("products")
	rec := newRecord(col, map[string]any{"sku": sku, "name": sku, "active": true})
	if err := s.App.Save(rec); err != nil {
		t.Fatal(err)
	}
	return rec.Id
}

const orderID = "9007199254740993" // beyond 2^53: a float64 would turn it into ...992

func TestOrderCreateIsStoredThenProcessedIntoOrderCustomerAndLines(t *testing.T) {
	s := start(t, map[string]string{"OPSPINE_SHOPIFY_ORDER_PREFIX": "PR-"})
	beef := addProduct(t, s, "PR-BEEF-2KG")

	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON()}); code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	s.WaitSettled(t)

	o := loadOrder(t, s, orderID)
	want := orderRow{ID: o.ID, ShopifyID: orderID, Number: "PR-1001", Status: "pending", Currency: "GBP",
		Email: "jane.doe@example.com", Subtotal: 5400, Discount: 600, Shipping: 499, Tax: 983, Total: 5899,
		Customer: o.Customer, HasUnknownSKU: true, Address: o.Address, Note: "Please leave with the neighbour at no. 12"}
	if o != want {
		t.Fatalf("order\n got %+v\nwant %+v", o, want)
	}
	var cust struct {
		ShopifyID string `db:"shopify_customer_id"`
		Email     string `db:"email"`
		First     string `db:"first_name"`
		OptIn     bool   `db:"marketing_opt_in"`
	}
	if err := s.App.DB().NewQuery(`SELECT shopify_customer_id, email, first_name, marketing_opt_in FROM customers WHERE id = {:id}`).
		Bind(dbx.Params{"id": o.Customer}).One(&cust); err != nil {
		t.Fatal(err)
	}
	if cust.ShopifyID != "9007199254741123" || cust.Email != "jane.doe@example.com" || cust.First != "Jane" || !cust.OptIn {
		t.Fatalf("customer %+v", cust)
	}
	var items []struct {
		LineID  string `db:"shopify_line_item_id"`
		SKU     string `db:"sku"`
		Product string `db:"product"`
		Qty     int    `db:"quantity"`
		Price   int64  `db:"unit_price_minor"`
		Unknown bool   `db:"unknown_sku"`
		Props   string `db:"properties"`
	}
	if err := s.App.DB().NewQuery(`SELECT shopify_line_item_id, sku, product, quantity, unit_price_minor, unknown_sku, properties
		FROM order_items WHERE "order" = {:id} ORDER BY shopify_line_item_id`).Bind(dbx.Params{"id": o.ID}).All(&items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("%d line items, want 2", len(items))
	}
	if items[0].LineID != "9007199254750001" || items[0].Product != beef || items[0].Unknown || items[0].Qty != 2 || items[0].Price != 2400 {
		t.Errorf("beef line %+v", items[0])
	}
	if items[1].SKU != "PR-WINGS-1KG" || items[1].Product != "" || !items[1].Unknown {
		t.Errorf("unknown SKU line must be kept and flagged: %+v", items[1])
	}
	if !strings.Contains(items[0].Props, `{"name":"Pet name","value":"Rex"}`) || !strings.Contains(items[1].Props, `{"name":"Engraving","value":"Good boy"}`) {
		t.Errorf("properties (array and object forms) not normalised: %s / %s", items[0].Props, items[1].Props)
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind = 'order.created' AND entity_id = {:id}", map[string]any{"id": o.ID}); n != 1 {
		t.Errorf("%d order.created events, want 1", n)
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind = 'order.unknown_sku'", nil); n != 1 {
		t.Errorf("%d order.unknown_sku events, want 1", n)
	}
	var inbox struct {
		Status   string `db:"status"`
		Attempts int    `db:"attempts"`
		Resource string `db:"resource_id"`
		Headers  string `db:"headers"`
	}
	if err := s.App.DB().NewQuery(`SELECT status, attempts, resource_id, headers FROM webhook_inbox`).One(&inbox); err != nil {
		t.Fatal(err)
	}
	if inbox.Status != "processed" || inbox.Attempts != 1 || inbox.Resource != "order:"+orderID {
		t.Errorf("inbox row %+v", inbox)
	}
	if strings.Contains(strings.ToLower(inbox.Headers), "hmac") {
		t.Errorf("the signature header must not be stored: %s", inbox.Headers)
	}
}

func TestSameWebhookIDTwiceIsStoredAndProcessedOnce(t *testing.T) {
	s := start(t, nil)
	d := testkit.Delivery{Topic: "orders/create", WebhookID: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", Body: testkit.Order().JSON()}
	for i := 0; i < 3; i++ {
		if code := s.Deliver(t, d); code != http.StatusOK {
			t.Fatalf("delivery %d: status %d", i, code)
		}
	}
	s.WaitSettled(t)
	if n := testkit.Count(t, s.App, "webhook_inbox", "", nil); n != 1 {
		t.Errorf("%d inbox rows, want 1", n)
	}
	if n := testkit.Count(t, s.App, "orders", "", nil); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind = 'order.created'", nil); n != 1 {
		t.Errorf("%d order.created events, want 1", n)
	}
}

func TestRefusedDeliveriesStoreNothingButACountedEvent(t *testing.T) {
	s := start(t, nil)
	body := testkit.Order().JSON()
	cases := []struct {
		name string
		d    testkit.Delivery
	}{
		{"wrong secret", testkit.Delivery{Topic: "orders/create", Body: body, Secret: "not-the-secret"}},
		{"signature of another body", testkit.Delivery{Topic: "orders/create", Body: body, Signature: "1Ak8jRwYOxBJcZ3oG2o6ZxkXlqSmAqo5c3MFn6u7W8k="}},
		{"signature not base64", testkit.Delivery{Topic: "orders/create", Body: body, Signature: "%%%"}},
		{"unknown shop", testkit.Delivery{Topic: "orders/create", Body: body, Shop: "evil.myshopify.com"}},
		{"another unknown shop", testkit.Delivery{Topic: "orders/create", Body: body, Shop: "other.myshopify.com"}},
	}
	for _, c := range cases {
		if code := s.Deliver(t, c.d); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", c.name, code)
		}
	}
	req := s.Request(testkit.Delivery{Topic: "orders/create", Body: body})
	req.Header.Del("X-Shopify-Hmac-Sha256")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("missing signature: status %d, want 401", res.StatusCode)
	}
	if n := testkit.Count(t, s.App, "webhook_inbox", "", nil); n != 0 {
		t.Errorf("%d inbox rows after refused deliveries, want 0", n)
	}
	var counts []struct {
		Reason string `db:"reason"`
		Count  int    `db:"count"`
	}
	err = s.App.DB().NewQuery(`SELECT json_extract(meta, '$.reason') AS reason, json_extract(meta, '$.count') AS count
		FROM ops_events WHERE kind = 'webhook.rejected' ORDER BY reason`).All(&counts)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range counts {
		got[c.Reason] += c.Count
	}
	if got["bad_signature"] != 4 || got["unknown_shop"] != 2 || len(counts) != 2 {
		t.Errorf("rejections counted %v in %d rows, want bad_signature 4 and unknown_shop 2 in 2 rows", got, len(counts))
	}
}

func TestRotatedSecretsBothVerifyUntilTheOldOneIsRemoved(t *testing.T) {
	s := start(t, map[string]string{"OPSPINE_SHOPIFY_WEBHOOK_SECRET": "old-secret, new-secret"})
	for _, secret := range []string{"old-secret", "new-secret"} {
		if code := s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON(), Secret: secret}); code != 200 {
			t.Errorf("secret %s: status %d, want 200", secret, code)
		}
	}
	rec, err := s.App.FindFirstRecordByData("shops", "domain", testkit.Shop)
	if err != nil {
		t.Fatal(err)
	}
	rec.Set("webhook_secrets", "new-secret")
	if err := s.App.Save(rec); err != nil {
		t.Fatal(err)
	}
	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON(), Secret: "old-secret"}); code != 401 {
		t.Errorf("retired secret: status %d, want 401", code)
	}
	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON(), Secret: "new-secret"}); code != 200 {
		t.Errorf("current secret: status %d, want 200", code)
	}
}

func TestOutOfOrderDeliveriesNeverLetOlderDataWin(t *testing.T) {
	s := start(t, nil)
	created := t0.Add(15 * time.Minute)
	paid := created.Add(time.Minute)
	cancelled := paid.Add(time.Hour)
	steps := []struct {
		topic string
		doc   testkit.Doc
		want  string
	}{
		{"orders/paid", testkit.Order(testkit.WithStatus("paid", paid)), "paid"},         // paid arrives first
		{"orders/create", testkit.Order(testkit.WithStatus("pending", created)), "paid"}, // older: ignored
		{"orders/cancelled", testkit.Order(testkit.WithStatus("paid", cancelled), testkit.WithCancelled(cancelled)), "cancelled"},
		{"orders/updated", testkit.Order(testkit.WithStatus("paid", paid)), "cancelled"}, // a late retry of an old update
	}
	for _, st := range steps {
		if code := s.Deliver(t, testkit.Delivery{Topic: st.topic, Body: st.doc.JSON()}); code != 200 {
			t.Fatalf("%s: status %d", st.topic, code)
		}
		s.WaitSettled(t)
		if got := loadOrder(t, s, orderID).Status; got != st.want {
			t.Fatalf("after %s: status %s, want %s", st.topic, got, st.want)
		}
	}
	if n := testkit.Count(t, s.App, "webhook_inbox", "status = 'skipped'", nil); n != 2 {
		t.Errorf("%d deliveries skipped as stale, want 2", n)
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind = 'order.stale_delivery_ignored'", nil); n != 2 {
		t.Errorf("%d stale events, want 2", n)
	}
	if n := testkit.Count(t, s.App, "orders", "", nil); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
}

func TestParallelDeliveriesOfOneOrderMakeOneOrderWithTheNewestState(t *testing.T) {
	s := start(t, nil)
	const n = 40
	var wg sync.WaitGroup
	codes := make([]int, n)
	newest := t0.Add(time.Duration(n) * time.Minute)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			updated := t0.Add(time.Duration(i+1) * time.Minute)
			status := "pending"
			if i%2 == 1 {
				status = "paid"
			}
			doc := testkit.Order(testkit.WithStatus(status, updated))
			// every delivery twice: Shopify retries what it thinks timed out
			id := "parallel-" + updated.Format("150405")
			for range 2 {
				codes[i], _ = s.Post(testkit.Delivery{Topic: "orders/updated", WebhookID: id, Body: doc.JSON()})
			}
		}(i)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("delivery %d: status %d", i, c)
		}
	}
	s.WaitSettled(t)
	if got := testkit.Count(t, s.App, "webhook_inbox", "", nil); got != n {
		t.Errorf("%d inbox rows, want %d", got, n)
	}
	if got := testkit.Count(t, s.App, "orders", "", nil); got != 1 {
		t.Fatalf("%d orders, want 1", got)
	}
	if got := testkit.Count(t, s.App, "order_items", "", nil); got != 2 {
		t.Errorf("%d line items, want 2", got)
	}
	if got := testkit.Count(t, s.App, "customers", "", nil); got != 1 {
		t.Errorf("%d customers, want 1", got)
	}
	var updated string
	s.App.DB().NewQuery(`SELECT shopify_updated_at FROM orders`).Row(&updated)
	if !strings.HasPrefix(updated, newest.Format("2006-01-02 15:04:05")) {
		t.Errorf("order keeps updated_at %s, want the newest %s", updated, newest)
	}
	if got := loadOrder(t, s, orderID).Status; got != "paid" { // the newest (i = n-1) is odd: paid
		t.Errorf("status %s, want paid", got)
	}
}

func TestPayloadThatCanNeverSucceedGoesToDeadLettersAndIsAnswered200(t *testing.T) {
	s := start(t, nil)
	noID := testkit.Order()
	delete(noID, "id")
	cases := []struct {
		name, topic string
		body        []byte
		reason      string
	}{
		{"invalid JSON", "orders/create", []byte(`{"id": 1, "line_items": [`), "not valid"},
		{"missing order id", "orders/create", noID.JSON(), "no id"},
		{"money with too many decimals", "orders/paid", testkit.Order(func(d testkit.Doc) { d["total_price"] = "1.999" }).JSON(), "more decimals"},
	}
	for _, c := range cases {
		if code := s.Deliver(t, testkit.Delivery{Topic: c.topic, Body: c.body}); code != 200 {
			t.Errorf("%s: status %d, want 200", c.name, code)
		}
	}
	s.WaitSettled(t)
	var letters []struct {
		Reason  string `db:"reason"`
		Payload string `db:"payload"`
	}
	s.App.DB().NewQuery(`SELECT reason, payload FROM dead_letters ORDER BY created`).All(&letters)
	if len(letters) != len(cases) {
		t.Fatalf("%d dead letters, want %d", len(letters), len(cases))
	}
	for _, c := range cases {
		found := false
		for _, l := range letters {
			if strings.Contains(l.Reason, c.reason) && l.Payload == string(c.body) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no dead letter with reason containing %q and the payload as received", c.name, c.reason)
		}
	}
	if n := testkit.Count(t, s.App, "webhook_inbox", "status = 'dead'", nil); n != len(cases) {
		t.Errorf("%d dead inbox rows, want %d", n, len(cases))
	}
	if n := testkit.Count(t, s.App, "orders", "", nil); n != 0 {
		t.Errorf("%d orders from bad payloads, want 0", n)
	}
}

func TestUnstorableDeliveryGets503SoShopifyRetries(t *testing.T) {
	s := start(t, nil)
	// the disk is full, as SQLite would say it
	if _, err := s.App.DB().NewQuery(`CREATE TRIGGER disk_full BEFORE INSERT ON webhook_inbox
		BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`).Execute(); err != nil {
		t.Fatal(err)
	}
	d := testkit.Delivery{Topic: "orders/create", WebhookID: "will-retry", Body: testkit.Order().JSON()}
	if code := s.Deliver(t, d); code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", code)
	}
	if _, err := s.App.DB().NewQuery(`DROP TRIGGER disk_full`).Execute(); err != nil {
		t.Fatal(err)
	}
	if code := s.Deliver(t, d); code != http.StatusOK { // Shopify's retry
		t.Fatalf("after space returns: status %d, want 200", code)
	}
	s.WaitSettled(t)
	if n := testkit.Count(t, s.App, "orders", "", nil); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
}

func TestOversizedBodyIsRefusedBeforeItIsRead(t *testing.T) {
	s := start(t, map[string]string{"OPSPINE_WEBHOOK_MAX_BODY_BYTES": "4096"})
	big := testkit.Order(func(d testkit.Doc) { d["note"] = strings.Repeat("x", 5000) }).JSON()
	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: big}); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", code)
	}
	if n := testkit.Count(t, s.App, "webhook_inbox", "", nil); n != 0 {
		t.Errorf("%d inbox rows, want 0", n)
	}
}

func TestUnhandledTopicIsKeptAndSkipped(t *testing.T) {
	s := start(t, nil)
	if code := s.Deliver(t, testkit.Delivery{Topic: "products/update", Body: []byte(`{"id": 1}`)}); code != 200 {
		t.Fatalf("status %d", code)
	}
	s.WaitSettled(t)
	if n := testkit.Count(t, s.App, "webhook_inbox", "status = 'skipped'", nil); n != 1 {
		t.Errorf("%d skipped rows, want 1", n)
	}
}

func jsonField(t *testing.T, body []byte, key string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("response is not JSON: %s", body)
	}
	return m[key]
}
