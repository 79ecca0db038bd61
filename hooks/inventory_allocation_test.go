package hooks_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/inventory"
	"github.com/opspine/opspine/app/testkit"
)

// inventoryBatch creates a batch of units over the ops API (so its production becomes a
// movement) and returns its id; released releases it through Transition (its hooks run).
func inventoryBatch(t *testing.T, s *testkit.Server, token, sku string, units int, released bool) string {
	t.Helper()
	code, body := s.Call(t, "POST", "/api/ops/batches", token, fmt.Sprintf(`{"product_sku": %q, "produced_at": "2026-11-20", "units": %d}`, sku, units))
	if code != http.StatusCreated {
		t.Fatalf("create batch: %d %s", code, body)
	}
	b := batchDecode[createdBatch](t, body)
	if released {
		if _, err := batches.Transition(s.App, b.ID, "released", "test", "lab pass", "", batchT0); err != nil {
			t.Fatal(err)
		}
	}
	return b.ID
}

// inventoryOrder is order n of the race: 2 × PR-BEEF-2KG and 1 × PR-WINGS-1KG, paid.
func inventoryOrder(n int, updated time.Time) testkit.Doc {
	return testkit.Order(testkit.WithOrderID(int64(500+n)), testkit.WithStatus("paid", updated))
}

type orderHolding struct {
	ID      string `db:"id"`
	Status  string `db:"status"`
	Beef    int    `db:"beef"`
	Wings   int    `db:"wings"`
	Waiting int    `db:"waiting"`
}

func holdings(t *testing.T, s *testkit.Server) []orderHolding {
	t.Helper()
	var out []orderHolding
	err := s.App.DB().NewQuery(`SELECT o.id, o.status,
		(SELECT COALESCE(SUM(a.quantity), 0) FROM allocations a JOIN order_items oi ON oi.id = a.order_item
		 WHERE a."order" = o.id AND a.status = 'allocated' AND oi.sku = 'PR-BEEF-2KG') AS beef,
		(SELECT COALESCE(SUM(a.quantity), 0) FROM allocations a JOIN order_items oi ON oi.id = a.order_item
		 WHERE a."order" = o.id AND a.status = 'allocated' AND oi.sku = 'PR-WINGS-1KG') AS wings,
		(SELECT COALESCE(SUM(q.quantity), 0) FROM allocation_queue q WHERE q."order" = o.id AND q.state = 'pending') AS waiting
		FROM orders o ORDER BY o.shopify_order_id`).All(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Forty paid orders race through the real webhook, each delivered twice (orders/create
// and a later orders/updated still saying paid), while other goroutines allocate the
// same orders directly and a batch is released mid-race: 30 beef and 25 wings go to
// orders, never more, no unit twice, and every order holds plus waits exactly what it
// bought. A cancellation then gives its units to a waiting order.
func TestPaidOrdersRacingForScarceStockThroughTheWebhookNeverOversell(t *testing.T) {
	s := startBatches(t, nil)
	batchProduct(t, s.App, "PR-BEEF-2KG")
	batchProduct(t, s.App, "PR-WINGS-1KG")
	operator := testkit.Token(t, s.App, "operator")
	inventoryBatch(t, s, operator, "PR-BEEF-2KG", 18, true)
	late := inventoryBatch(t, s, operator, "PR-BEEF-2KG", 12, false)
	inventoryBatch(t, s, operator, "PR-WINGS-1KG", 25, true)
	alloc := &inventory.Allocator{Now: s.Clock.Now, Timezone: s.Spine.Config.Timezone}

	const orders = 40
	var wg sync.WaitGroup
	errs := make(chan error, orders*4)
	for i := range orders {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for n, topic := range []string{"orders/create", "orders/updated"} {
				doc := inventoryOrder(i, batchT0.Add(time.Duration(i*10+n)*time.Second))
				if code, err := s.Post(testkit.Delivery{Topic: topic, Body: doc.JSON()}); err != nil || code != 200 {
					errs <- fmt.Errorf("order %d %s: %d %v", i, topic, code, err)
				}
			}
		}()
		go func() { // direct allocation of whatever orders exist by now
			defer wg.Done()
			var ids []string
			s.App.DB().NewQuery(`SELECT id FROM orders ORDER BY random() LIMIT 3`).Column(&ids)
			for _, id := range ids {
				if _, err := alloc.AllocateOrder(s.App, id, "test"); err != nil {
					errs <- err
				}
			}
		}()
		if i == orders/2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := batches.Transition(s.App, late, "released", "test", "lab pass", "", batchT0); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	s.WaitSettled(t)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	beef, wings := 0, 0
	for _, h := range holdings(t, s) {
		beef, wings = beef+h.Beef, wings+h.Wings
		if h.Beef+h.Wings+h.Waiting != 3 {
			t.Errorf("order %s holds %d beef and %d wings and waits for %d: want 3 in all", h.ID, h.Beef, h.Wings, h.Waiting)
		}
		want := "allocated"
		if h.Waiting > 0 {
			want = "awaiting_stock"
		}
		if h.Status != want {
			t.Errorf("order %s is %s, want %s (waits %d)", h.ID, h.Status, want, h.Waiting)
		}
	}
	if beef != 30 || wings != 25 {
		t.Errorf("allocated %d beef and %d wings, want all 30 and 25", beef, wings)
	}
	if n := testkit.Count(t, s.App, "orders", "", nil); n != orders {
		t.Errorf("%d orders", n)
	}
	ledgerIsRight(t, s)

	// a cancellation before dispatch gives its units back, to the oldest waiting order
	var allocated string
	s.App.DB().NewQuery(`SELECT shopify_order_id FROM orders WHERE status = 'allocated' ORDER BY shopify_order_id LIMIT 1`).Row(&allocated)
	var n int
	fmt.Sscan(allocated, &n)
	cancelled := testkit.Order(testkit.WithOrderID(int64(n)), testkit.WithStatus("paid", batchT0.Add(time.Hour)), testkit.WithCancelled(batchT0.Add(time.Hour)))
	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/cancelled", Body: cancelled.JSON()}); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	s.WaitSettled(t)
	beefAfter, wingsAfter := 0, 0
	for _, h := range holdings(t, s) {
		beefAfter, wingsAfter = beefAfter+h.Beef, wingsAfter+h.Wings
		if h.Status == "cancelled" && (h.Beef != 0 || h.Wings != 0 || h.Waiting != 0) {
			t.Errorf("cancelled order still holds %+v", h)
		}
	}
	if beefAfter != 30 || wingsAfter != 25 {
		t.Errorf("after the cancellation %d beef and %d wings are held, want the freed units re-allocated (30, 25)", beefAfter, wingsAfter)
	}
	ledgerIsRight(t, s)
}

func ledgerIsRight(t *testing.T, s *testkit.Server) {
	t.Helper()
	bad, err := inventory.VerifyLedger(s.App.DB())
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("ledger mismatches: %+v", bad)
	}
}

// A paid order from Shopify is allocated in the delivery's transaction, a later
// orders/updated that still says paid leaves it allocated, and an order for stock
// that is not there waits and shows in the awaiting view.
func TestPaidDeliveryAllocatesAndALaterPaidUpdateKeepsTheAllocation(t *testing.T) {
	s := startBatches(t, nil)
	batchProduct(t, s.App, "PR-BEEF-2KG")
	batchProduct(t, s.App, "PR-WINGS-1KG")
	operator := testkit.Token(t, s.App, "operator")
	inventoryBatch(t, s, operator, "PR-BEEF-2KG", 3, true)
	inventoryBatch(t, s, operator, "PR-WINGS-1KG", 5, true)

	for i, topic := range []string{"orders/paid", "orders/updated"} {
		doc := testkit.Order(testkit.WithStatus("paid", batchT0.Add(time.Duration(i)*time.Minute)))
		if code := s.Deliver(t, testkit.Delivery{Topic: topic, Body: doc.JSON()}); code != 200 {
			t.Fatalf("%s: %d", topic, code)
		}
		s.WaitSettled(t)
		if o := loadOrder(t, s, orderID); o.Status != "allocated" {
			t.Fatalf("after %s: %s", topic, o.Status)
		}
	}
	if n := testkit.Count(t, s.App, "allocations", "status = 'allocated'", nil); n != 2 {
		t.Errorf("%d allocations, want one per line", n)
	}
	second := testkit.Order(testkit.WithOrderID(77), testkit.WithStatus("paid", batchT0))
	s.Deliver(t, testkit.Delivery{Topic: "orders/paid", Body: second.JSON()})
	s.WaitSettled(t)
	if o := loadOrder(t, s, "77"); o.Status != "awaiting_stock" {
		t.Fatalf("second order: %s", o.Status)
	}
	code, body := s.Call(t, "GET", "/api/ops/inventory/awaiting", operator, "")
	var awaiting struct{ Orders []inventory.AwaitingOrder }
	json.Unmarshal(body, &awaiting)
	if code != 200 || len(awaiting.Orders) != 1 || len(awaiting.Orders[0].Lines) != 1 ||
		awaiting.Orders[0].Lines[0].SKU != "PR-BEEF-2KG" || awaiting.Orders[0].Lines[0].Waiting != 1 {
		t.Errorf("awaiting: %d %s", code, body)
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind = 'order.awaiting_stock'", nil); n != 1 {
		t.Errorf("%d awaiting_stock events", n)
	}
	ledgerIsRight(t, s)
}

// Managers adjust and count stock over the API and in the admin UI; refusals change
// nothing; movements and the queue cannot be edited by hand; staff see stock by
// product and batch.
func TestInventoryAdjustCountAndStockViews(t *testing.T) {
	s := startBatches(t, nil)
	batchProduct(t, s.App, "PR-BEEF-2KG")
	operator := testkit.Token(t, s.App, "operator")
	manager := testkit.Token(t, s.App, "manager")
	superuser := testkit.Token(t, s.App, "superuser")
	b := inventoryBatch(t, s, operator, "PR-BEEF-2KG", 10, true)
	if n := testkit.Count(t, s.App, "inventory_movements", "batch = {:b} AND type = 'production' AND quantity = 10 AND after = 10", dbx.Params{"b": b}); n != 1 {
		t.Fatalf("batch creation wrote %d production movements", n)
	}
	order := testkit.Order(testkit.WithStatus("paid", batchT0))
	s.Deliver(t, testkit.Delivery{Topic: "orders/paid", Body: order.JSON()}) // holds 2
	s.WaitSettled(t)

	for _, c := range []struct {
		name, path, token, body string
		want                    int
	}{
		{"operator adjusts", "/api/ops/inventory/adjust", operator, `{"batch":"B-261120-001","quantity":1,"reason":"found"}`, 403},
		{"below allocated", "/api/ops/inventory/adjust", manager, `{"batch":"B-261120-001","quantity":-9,"reason":"damaged"}`, 400},
		{"no reason", "/api/ops/inventory/adjust", manager, `{"batch":"B-261120-001","quantity":-1}`, 400},
		{"unknown batch", "/api/ops/inventory/adjust", manager, `{"batch":"B-000000-999","quantity":-1,"reason":"x"}`, 404},
		{"bad body", "/api/ops/inventory/adjust", manager, `{"batch":"B-261120-001","qty":-1}`, 400},
		{"count below allocated", "/api/ops/inventory/count", manager, `{"batch":"B-261120-001","counted":1}`, 400},
		{"count without counted", "/api/ops/inventory/count", manager, `{"batch":"B-261120-001"}`, 400},
		{"adjust", "/api/ops/inventory/adjust", manager, `{"batch":"B-261120-001","quantity":-3,"reason":"3 pouches torn"}`, 200},
		{"count", "/api/ops/inventory/count", manager, `{"batch":"` + b + `","counted":6,"reason":"weekly count"}`, 200},
	} {
		if code, body := s.Call(t, "POST", c.path, c.token, c.body); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
	// admin UI: an adjustment record runs the same action; other edits are refused
	code, body := s.Call(t, "POST", "/api/collections/inventory_movements/records", superuser,
		`{"batch":"`+b+`","type":"adjustment","quantity":2,"reason":"returned by courier"}`)
	if code != 200 {
		t.Fatalf("admin adjustment: %d %s", code, body)
	}
	var mv struct {
		ID     string `json:"id"`
		Before int    `json:"before"`
		After  int    `json:"after"`
		Actor  string `json:"actor"`
	}
	json.Unmarshal(body, &mv)
	if mv.Before != 6 || mv.After != 8 || mv.Actor == "" {
		t.Errorf("admin adjustment: %s", body)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/collections/inventory_movements/records", `{"batch":"` + b + `","type":"production","quantity":50}`},
		{"PATCH", "/api/collections/inventory_movements/records/" + mv.ID, `{"quantity":500}`},
		{"DELETE", "/api/collections/inventory_movements/records/" + mv.ID, ``},
		{"POST", "/api/collections/allocation_queue/records", `{"quantity":1}`},
	} {
		if code, body := s.Call(t, c.method, c.path, superuser, c.body); code != 400 {
			t.Errorf("%s %s: %d %s, want 400", c.method, c.path, code, body)
		}
	}

	code, body = s.Call(t, "GET", "/api/ops/inventory/stock?sku=PR-BEEF-2KG", operator, "")
	var stock struct{ Products []inventory.ProductStock }
	json.Unmarshal(body, &stock)
	if code != 200 || len(stock.Products) != 1 || len(stock.Products[0].Batches) != 1 {
		t.Fatalf("stock: %d %s", code, body)
	}
	got := stock.Products[0].Batches[0]
	if got.OnHand != 8 || got.Allocated != 2 || got.Available != 6 || got.DaysToExpiry == nil || *got.DaysToExpiry != 180 || got.Code != "B-261120-001" {
		t.Errorf("stock row %+v", got)
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind IN ('inventory.adjustment', 'inventory.count_correction')", nil); n != 3 {
		t.Errorf("%d inventory ops events, want 3", n)
	}
	if n := testkit.Count(t, s.App, "inventory_stock", "batch_code = 'B-261120-001' AND available = 6", nil); n != 1 {
		t.Errorf("the inventory_stock view shows %d rows", n)
	}
	ledgerIsRight(t, s)
}
