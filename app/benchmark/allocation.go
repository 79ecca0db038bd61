package benchmark

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/inventory"
	_ "github.com/opspine/opspine/pb_migrations"
)

// Sizes of the allocation benchmark's history (issue 6): 10,000 batches and
// 1,000,000 historical allocations, spread over the given number of orders.
const (
	allocationBatches     = 10000
	allocationHistory     = 1000000
	allocationProducts    = 100
	allocationSampleSize  = 2000
	allocationSampleLines = 2
)

// MeasureAllocations fills a fresh database with 100 products, 10,000 batches (most
// of them long sold out, the rest released with stock, some on QA hold), `orders`
// historical orders with one line each and 1,000,000 historical allocations spread over
// those orders; then it allocates 2,000 new paid orders of two
// lines each, one transaction per order as a paid delivery does, and returns orders
// allocated per second. The cost should not grow with orders or history: the FEFO
// query reads only batches with free units (a partial index) and a line's holdings by
// its own index.
func MeasureAllocations(orders int) (perSecond float64, err error) {
	if orders < 1 {
		return 0, fmt.Errorf("allocations: orders must be at least 1")
	}
	dir, err := os.MkdirTemp("", "opspine-allocations-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	app, closeApp, err := openMigrated(dir)
	if err != nil {
		return 0, err
	}
	defer closeApp()
	now := time.Now().UTC()
	if err := fillForAllocations(app, orders, now); err != nil {
		return 0, err
	}
	if plan, err := inventory.ExplainFEFO(app.DB()); err != nil || strings.Contains(plan, "SCAN") || strings.Contains(plan, "TEMP B-TREE") {
		return 0, fmt.Errorf("allocations: the FEFO query does not search its index: %s %v", plan, err)
	}
	ids, err := sampleOrders(app, now)
	if err != nil {
		return 0, err
	}
	alloc := &inventory.Allocator{Now: func() time.Time { return now }, Timezone: time.UTC}
	started := time.Now()
	for _, id := range ids {
		out, err := alloc.AllocateOrder(app, id, "benchmark")
		if err != nil {
			return 0, err
		}
		if out.Status != inventory.OrderAllocated {
			return 0, fmt.Errorf("allocations: order %s ended %s (%d waiting): the fill has too little stock", id, out.Status, out.Waiting)
		}
	}
	perSecond = float64(len(ids)) / time.Since(started).Seconds()
	if bad, err := inventory.VerifyLedger(app.DB()); err != nil || len(bad) > 0 {
		return 0, fmt.Errorf("allocations: ledger after the run: %d mismatches, %v", len(bad), err)
	}
	return perSecond, nil
}

// fillForAllocations writes the history with SQL generating it in the database: the
// stock of stockSQL (10,000 batches of 100 products, the expired ones sold out, the
// others with 10,000 units of which the history holds some) and 1,000,000 allocations
// spread over orders orders of one line each.
func fillForAllocations(app core.App, orders int, now time.Time) error {
	ts := "strftime('%Y-%m-%d %H:%M:%S.000Z', 'now')"
	inserts := append(stockSQL(allocationProducts, allocationBatches),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO orders (id, shop, shopify_order_id, order_number, status, currency, total_minor, shopify_created_at, shopify_updated_at, created, updated)
		SELECT printf('ho%%013d', i), 'shop', 'h' || i, 'H-' || i, 'allocated', 'GBP', 4200, %s, %s, %s, %s FROM n`, orders-1, ts, ts, ts, ts),
		fmt.Sprintf(`INSERT INTO order_items (id, "order", product, shopify_line_item_id, sku, quantity, current_quantity, unknown_sku, created, updated)
		 SELECT 'hi' || substr(id, 3), id, printf('bp%%013d', CAST(substr(id, 3) AS INTEGER) %% %d), 'hl' || substr(id, 3), '', 1, 1, 0, created, created FROM orders`,
			allocationProducts),
		// allocation k: order k % orders, a batch of that line's product; units of expired batches were dispatched
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO allocations (id, batch, "order", order_item, quantity, status, created, updated)
		SELECT printf('ha%%013d', i), printf('bb%%013d', ((i * 7919) %% %d) / %d * %d + (i %% %d) %% %d),
		 printf('ho%%013d', i %% %d), printf('hi%%013d', i %% %d), 1,
		 CASE WHEN i %% 10 = 0 THEN 'released' WHEN i %% 10 = 1 THEN 'allocated' ELSE 'dispatched' END, %s, %s FROM n`,
			allocationHistory-1, allocationBatches, allocationProducts, allocationProducts, orders, allocationProducts, orders, orders, ts, ts),
	)
	after := []string{
		// dispatched units have left; expired batches are sold out (the rest written off)
		`UPDATE batches SET
		 allocated = (SELECT COALESCE(SUM(quantity), 0) FROM allocations a WHERE a.batch = batches.id AND a.status = 'allocated'),
		 on_hand = 10000 - (SELECT COALESCE(SUM(quantity), 0) FROM allocations a WHERE a.batch = batches.id AND a.status = 'dispatched')`,
		fmt.Sprintf(`INSERT INTO inventory_movements (id, batch, product, type, quantity, before, after, reference, "order", actor, reason, created, updated)
		 SELECT 'dm' || substr(id, 3), id, product, 'dispatch', on_hand - 10000, 10000, on_hand, 'batch:' || id, '', 'bench', 'history', %s, %s FROM batches WHERE on_hand < 10000`, ts, ts),
		fmt.Sprintf(`INSERT INTO inventory_movements (id, batch, product, type, quantity, before, after, reference, "order", actor, reason, created, updated)
		 SELECT 'wm' || substr(id, 3), id, product, 'adjustment', allocated - on_hand, on_hand, allocated, 'batch:' || id, '', 'bench', 'expired: written off', %s, %s
		 FROM batches WHERE expiry_date < %s AND on_hand > allocated`, ts, ts, ts),
		fmt.Sprintf(`UPDATE batches SET on_hand = allocated WHERE expiry_date < %s`, ts),
	}
	if err := fillFast(app, []string{"orders", "order_items", "allocations"}, inserts, after); err != nil {
		return fmt.Errorf("fill the database for allocations: %w", err)
	}
	return nil
}

// sampleOrders writes the paid orders to allocate: two lines of two units each, of
// products spread over all 100.
func sampleOrders(app core.App, now time.Time) ([]string, error) {
	ts := "strftime('%Y-%m-%d %H:%M:%S.000Z', 'now')"
	stmts := []string{
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO orders (id, shop, shopify_order_id, order_number, status, currency, total_minor, shopify_created_at, shopify_updated_at, created, updated)
		SELECT printf('so%%013d', i), 'shop', 's' || i, 'S-' || i, 'paid', 'GBP', 4200, %s, %s, %s, %s FROM n`, allocationSampleSize-1, ts, ts, ts, ts),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO order_items (id, "order", product, shopify_line_item_id, sku, quantity, current_quantity, unknown_sku, created, updated)
		SELECT printf('si%%013d', i), printf('so%%013d', i / %d), printf('bp%%013d', (i * 37) %% %d), 'sl' || i, '', 2, 2, 0, %s, %s FROM n`,
			allocationSampleSize*allocationSampleLines-1, allocationSampleLines, allocationProducts, ts, ts),
	}
	for _, q := range stmts {
		if _, err := app.DB().NewQuery(q).Execute(); err != nil {
			return nil, fmt.Errorf("write the orders to allocate: %w", err)
		}
	}
	var ids []string
	err := app.DB().NewQuery(`SELECT id FROM orders WHERE status = 'paid' ORDER BY id`).Column(&ids)
	return ids, err
}
