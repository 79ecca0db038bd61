package inventory_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/inventory"
)

func TestAllocateOrderTakesFirstExpiryFirstThenProducedThenCode(t *testing.T) {
	f := newFixture(t)
	beef := f.product("PR-BEEF-2KG", false)
	f.batch(beef, "B-010", "released", "2026-12-10", "2026-11-01", 2)
	f.batch(beef, "B-004", "released", "2026-12-05", "2026-11-02", 2) // same expiry, produced later
	f.batch(beef, "B-005", "released", "2026-12-05", "2026-11-01", 2) // same expiry and day: code decides
	f.batch(beef, "B-002", "released", "2026-12-05", "2026-11-01", 2)
	f.batch(beef, "B-001", "qa_hold", "2026-12-01", "2026-11-01", 50)  // not released
	f.batch(beef, "B-000", "recalled", "2026-12-01", "2026-11-01", 50) // recalled
	f.batch(beef, "B-003", "failed", "2026-12-01", "2026-11-01", 50)   // failed

	id, out := f.paid(line{beef, 7})
	if want := map[string]int{"B-002": 2, "B-005": 2, "B-004": 2, "B-010": 1}; !eq(f.held(id), want) {
		t.Errorf("held %v, want %v", f.held(id), want)
	}
	if out.Status != "allocated" || out.Allocated != 7 || out.Waiting != 0 || f.status(id) != "allocated" {
		t.Errorf("outcome %+v, status %s", out, f.status(id))
	}
	f.ledgerIsRight()
}

func TestShortDatedStockIsSkipped(t *testing.T) {
	f := newFixture(t)
	beef := f.product("PR-BEEF-2KG", false)
	// delivered 22 Nov: 28 Nov leaves 6 days, 29 Nov exactly 7
	f.batch(beef, "B-SHORT", "released", "2026-11-28", "2026-10-01", 10)
	f.batch(beef, "B-OK", "released", "2026-11-29", "2026-10-02", 3)

	id, out := f.paid(line{beef, 5})
	if want := map[string]int{"B-OK": 3}; !eq(f.held(id), want) {
		t.Errorf("held %v, want %v", f.held(id), want)
	}
	if out.Waiting != 2 || f.status(id) != "awaiting_stock" || f.waiting(id) != 2 {
		t.Errorf("outcome %+v, status %s, queue %d", out, f.status(id), f.waiting(id))
	}
	// a shorter minimum shelf life in config lets the short batch serve the rest
	if _, err := f.app.DB().NewQuery(`INSERT INTO config (id, key, value, created, updated) VALUES ('cfgminshelf0001', 'allocation_min_shelf_life_days', 6, '', '')`).Execute(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.alloc.AllocateOrder(f.app, id, "test"); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"B-SHORT": 2, "B-OK": 3}; !eq(f.held(id), want) || f.status(id) != "allocated" || f.waiting(id) != 0 {
		t.Errorf("after the setting: held %v, status %s", f.held(id), f.status(id))
	}
	f.ledgerIsRight()
}

func TestPartialAllocationWaitsAndAReleasedBatchServesTheQueueOldestFirst(t *testing.T) {
	f := newFixture(t)
	beef := f.product("PR-BEEF-2KG", false)
	wings := f.product("PR-WINGS-1KG", false)
	f.batch(beef, "B-1", "released", "2026-12-20", "2026-11-01", 3)
	f.batch(wings, "W-1", "released", "2026-12-20", "2026-11-01", 10)

	first, out := f.paid(line{beef, 5}, line{wings, 1})
	if out.Allocated != 4 || out.Waiting != 2 || f.status(first) != "awaiting_stock" {
		t.Fatalf("first: %+v, %s", out, f.status(first))
	}
	second, _ := f.paid(line{beef, 2})
	if f.waiting(second) != 2 || f.status(second) != "awaiting_stock" {
		t.Fatalf("second waits %d, %s", f.waiting(second), f.status(second))
	}
	// a new batch on QA hold serves nobody until it is released
	fresh := f.batch(beef, "B-2", "qa_hold", "2027-01-10", "2026-11-19", 3)
	if _, err := batches.Transition(f.app, fresh, "released", "test", "lab pass", "", t0); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"B-1": 3, "B-2": 2, "W-1": 1}; !eq(f.held(first), want) || f.status(first) != "allocated" || f.waiting(first) != 0 {
		t.Errorf("first after release: held %v, %s, waits %d", f.held(first), f.status(first), f.waiting(first))
	}
	if want := map[string]int{"B-2": 1}; !eq(f.held(second), want) || f.status(second) != "awaiting_stock" || f.waiting(second) != 1 {
		t.Errorf("second after release: held %v, %s, waits %d", f.held(second), f.status(second), f.waiting(second))
	}
	f.ledgerIsRight()
}

func TestCancellationReturnsStockToTheBatchAndTheQueue(t *testing.T) {
	f := newFixture(t)
	beef := f.product("PR-BEEF-2KG", false)
	b := f.batch(beef, "B-1", "released", "2026-12-20", "2026-11-01", 4)
	first, _ := f.paid(line{beef, 3})
	second, _ := f.paid(line{beef, 3})
	if f.waiting(second) != 2 {
		t.Fatalf("second waits %d, want 2", f.waiting(second))
	}
	for range 2 { // idempotent: the second cancellation finds nothing held
		if _, err := f.app.DB().NewQuery(`UPDATE orders SET status = 'cancelled' WHERE id = {:id}`).Bind(dbx.Params{"id": first}).Execute(); err != nil {
			t.Fatal(err)
		}
		if err := f.alloc.OrderChanged(f.app, first, "allocated", "cancelled"); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.held(first)) != 0 || f.waiting(first) != 0 {
		t.Errorf("cancelled order still holds %v", f.held(first))
	}
	if want := map[string]int{"B-1": 3}; !eq(f.held(second), want) || f.status(second) != "allocated" {
		t.Errorf("second: held %v, %s", f.held(second), f.status(second))
	}
	if onHand, allocated := f.stock(b); onHand != 4 || allocated != 3 {
		t.Errorf("batch: %d on hand, %d allocated", onHand, allocated)
	}
	var released int
	f.app.DB().NewQuery(`SELECT COUNT(*) FROM inventory_movements WHERE type = 'release' AND "order" = {:o}`).Bind(dbx.Params{"o": first}).Row(&released)
	if released != 1 {
		t.Errorf("%d release movements, want 1", released)
	}
	f.ledgerIsRight()
}

func TestRecallReleasesUndispatchedUnitsAndReallocatesFromOtherBatches(t *testing.T) {
	f := newFixture(t)
	beef := f.product("PR-BEEF-2KG", false)
	bad := f.batch(beef, "B-BAD", "released", "2026-12-05", "2026-11-01", 5)
	f.batch(beef, "B-GOOD", "released", "2026-12-20", "2026-11-02", 4)
	shipped, _ := f.paid(line{beef, 2})
	for range 2 { // the second dispatch finds nothing left to dispatch
		if _, err := f.alloc.DispatchOrder(f.app, shipped, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if onHand, allocated := f.stock(bad); onHand != 3 || allocated != 0 {
		t.Fatalf("after dispatch: %d on hand, %d allocated", onHand, allocated)
	}
	held, _ := f.paid(line{beef, 5})
	if want := map[string]int{"B-BAD": 3, "B-GOOD": 2}; !eq(f.held(held), want) {
		t.Fatalf("before the recall: %v", f.held(held))
	}
	if _, err := batches.RecallBatch(f.app, bad, "Salmonella in a retained sample", "test", t0); err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"B-GOOD": 4}; !eq(f.held(held), want) || f.status(held) != "awaiting_stock" || f.waiting(held) != 1 {
		t.Errorf("after the recall: held %v, %s, waits %d", f.held(held), f.status(held), f.waiting(held))
	}
	var dispatched int
	f.app.DB().NewQuery(`SELECT COALESCE(SUM(quantity), 0) FROM allocations WHERE "order" = {:o} AND status = 'dispatched'`).Bind(dbx.Params{"o": shipped}).Row(&dispatched)
	if dispatched != 2 {
		t.Errorf("dispatched units changed: %d", dispatched)
	}
	if onHand, allocated := f.stock(bad); onHand != 3 || allocated != 0 {
		t.Errorf("recalled batch: %d on hand, %d allocated", onHand, allocated)
	}
	f.ledgerIsRight()
}

func TestAllocationIsIdempotentAndSkipsProductsNotBatchTracked(t *testing.T) {
	f := newFixture(t)
	beef := f.product("PR-BEEF-2KG", false)
	cake := f.product("CAKE-CUSTOM", true)
	f.batch(beef, "B-1", "released", "2026-12-20", "2026-11-01", 10)

	id, _ := f.paid(line{beef, 2}, line{cake, 1})
	for range 3 {
		out, err := f.alloc.AllocateOrder(f.app, id, "test")
		if err != nil {
			t.Fatal(err)
		}
		if out.Allocated != 0 || out.Released != 0 || out.Status != "allocated" {
			t.Errorf("again: %+v", out)
		}
	}
	if want := map[string]int{"B-1": 2}; !eq(f.held(id), want) {
		t.Errorf("held %v", f.held(id))
	}
	cakeOnly, out := f.paid(line{cake, 1})
	if out.Status != "paid" || f.status(cakeOnly) != "paid" || f.waiting(cakeOnly) != 0 {
		t.Errorf("untracked order: %+v", out)
	}
	// a line reduced after an edit or refund gives back what it no longer needs
	if _, err := f.app.DB().NewQuery(`UPDATE order_items SET current_quantity = 1 WHERE "order" = {:o} AND product = {:p}`).
		Bind(dbx.Params{"o": id, "p": beef}).Execute(); err != nil {
		t.Fatal(err)
	}
	if out, err := f.alloc.AllocateOrder(f.app, id, "test"); err != nil || out.Released != 1 {
		t.Errorf("reduced line: %+v %v", out, err)
	}
	if want := map[string]int{"B-1": 1}; !eq(f.held(id), want) {
		t.Errorf("held after the reduction %v", f.held(id))
	}
	f.ledgerIsRight()
}

func TestAdjustAndCountNeverTakeABatchBelowWhatIsAllocated(t *testing.T) {
	f := newFixture(t)
	beef := f.product("PR-BEEF-2KG", false)
	b := f.batch(beef, "B-1", "released", "2026-12-20", "2026-11-01", 10)
	waiting, _ := f.paid(line{beef, 12})

	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"below allocated", func() error {
			_, err := f.alloc.Adjust(f.app, inventory.Adjustment{BatchID: b, Quantity: -1, Reason: "damaged", Actor: "test"})
			return err
		}},
		{"no reason", func() error {
			_, err := f.alloc.Adjust(f.app, inventory.Adjustment{BatchID: b, Quantity: 5, Actor: "test"})
			return err
		}},
		{"zero", func() error {
			_, err := f.alloc.Adjust(f.app, inventory.Adjustment{BatchID: b, Quantity: 0, Reason: "x", Actor: "test"})
			return err
		}},
		{"count below allocated", func() error {
			_, err := f.alloc.Count(f.app, inventory.StockCount{BatchID: "B-1", Counted: 9, Actor: "test"})
			return err
		}},
		{"negative count", func() error {
			_, err := f.alloc.Count(f.app, inventory.StockCount{BatchID: "B-1", Counted: -1, Actor: "test"})
			return err
		}},
	} {
		if err := c.run(); err == nil {
			t.Errorf("%s: accepted", c.name)
		} else if _, ok := err.(*inventory.RefusedError); !ok {
			t.Errorf("%s: %v is not a refusal", c.name, err)
		}
	}
	if onHand, allocated := f.stock(b); onHand != 10 || allocated != 10 {
		t.Fatalf("refusals changed the batch: %d/%d", onHand, allocated)
	}
	// found units go to the waiting order; a count records the difference
	m, err := f.alloc.Adjust(f.app, inventory.Adjustment{BatchID: "B-1", Quantity: 3, Reason: "found a case", Actor: "staff:x"})
	if err != nil || m.Before != 10 || m.After != 13 {
		t.Fatalf("adjust: %+v %v", m, err)
	}
	if f.status(waiting) != "allocated" || f.waiting(waiting) != 0 {
		t.Errorf("waiting order: %s, waits %d", f.status(waiting), f.waiting(waiting))
	}
	m, err = f.alloc.Count(f.app, inventory.StockCount{BatchID: "B-1", Counted: 12, Actor: "staff:x"})
	if err != nil || m.Type != "count_correction" || m.Quantity != -1 || m.After != 12 || m.Available != 0 {
		t.Fatalf("count: %+v %v", m, err)
	}
	f.ledgerIsRight()
}

// TestParallelAllocationsNeverOversellScarceStock races many orders, each allocated
// several times from several goroutines, for less stock than they want.
func TestParallelAllocationsNeverOversellScarceStock(t *testing.T) {
	f := newFixture(t)
	beef := f.product("PR-BEEF-2KG", false)
	for i := range 5 {
		f.batch(beef, fmt.Sprintf("B-%d", i), "released", fmt.Sprintf("2026-12-%02d", 10+i), "2026-11-01", 7) // 35 units
	}
	const orders = 30 // 3 units each: 90 wanted
	ids := make([]string, orders)
	for i := range ids {
		ids[i] = f.order("paid", line{beef, 3})
	}
	var wg sync.WaitGroup
	errs := make(chan error, orders*3)
	for g := range 3 {
		for i := range ids {
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				if _, err := f.alloc.AllocateOrder(f.app, id, fmt.Sprintf("worker-%d", g)); err != nil {
					errs <- err
				}
			}(ids[(i+g*7)%orders])
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var total struct {
		Held    int `db:"held"`
		Waiting int `db:"waiting"`
	}
	f.app.DB().NewQuery(`SELECT (SELECT SUM(quantity) FROM allocations WHERE status = 'allocated') AS held,
		(SELECT SUM(quantity) FROM allocation_queue WHERE state = 'pending') AS waiting`).One(&total)
	if total.Held != 35 || total.Waiting != 90-35 {
		t.Errorf("held %d, waiting %d: want 35 and 55", total.Held, total.Waiting)
	}
	full := 0
	for _, id := range ids {
		n := 0
		for _, q := range f.held(id) {
			n += q
		}
		if n+f.waiting(id) != 3 {
			t.Errorf("order %s holds %d and waits %d", id, n, f.waiting(id))
		}
		if n == 3 {
			full++
			if f.status(id) != "allocated" {
				t.Errorf("order %s is %s", id, f.status(id))
			}
		}
	}
	if full != 11 {
		t.Errorf("%d orders fully allocated, want 11 (35 units / 3)", full)
	}
	f.ledgerIsRight()
	_ = time.Second
}

// The FEFO query reads only batches with free units, through the partial index, in
// index order: its cost does not grow with sold-out batches or historical allocations.
func TestFEFOQuerySearchesThePartialIndexWithoutSorting(t *testing.T) {
	f := newFixture(t)
	plan, err := inventory.ExplainFEFO(f.app.DB())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "idx_batches_fefo_available") || strings.Contains(plan, "SCAN") || strings.Contains(plan, "TEMP B-TREE") {
		t.Errorf("plan:\n%s", plan)
	}
}
