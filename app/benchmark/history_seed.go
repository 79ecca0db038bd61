package benchmark

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/opspine/opspine/app/ingest"
)

// historyProducts is how many products the seeded batches are of.
const historyProducts = 100

// ordersPerBatch is how many orders a seeded shop has per production batch.
const ordersPerBatch = 100

// seedHistory migrates a fresh data dir at dir/pb_data for `serve` and gives it the
// history of a shop that has taken orders orders: the bench shop (its webhook secret
// set), a customer per two orders, the orders with one line each, the deliveries they
// came in (all processed) with their ops events, and a released batch with a passing
// lab result per ordersPerBatch orders (a 97th on QA hold). It runs in this process
// while no child has the directory open, and returns the released batches' public ids.
func seedHistory(dir, secret string, orders int) (publicIDs []string, err error) {
	app, closeApp, err := openMigrated(filepath.Join(dir, "pb_data"))
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer closeApp()
	if err := ingest.EnsureShop(app, benchShop, []string{secret}, ""); err != nil {
		return nil, fmt.Errorf("seed: shop: %w", err)
	}
	if orders <= 0 {
		return nil, nil
	}
	var shopID string
	if err := app.DB().NewQuery(`SELECT id FROM shops WHERE domain = {:domain}`).Bind(map[string]any{"domain": benchShop}).Row(&shopID); err != nil {
		return nil, fmt.Errorf("seed: shop id: %w", err)
	}
	now := time.Now().UTC()
	h := historyShape{Shop: shopID, ShopDomain: benchShop, Customers: max(orders/2, 1)}
	batches := historyBatches(orders)
	inserts := []string{customersSQL(h.Customers, h), ordersSQL(orders, now, h), orderItemsSQL(orders), inboxSQL(orders, now, h), opsEventsSQL(orders, now)}
	inserts = append(inserts, stockSQL(min(historyProducts, batches), batches)...)
	inserts = append(inserts, labResultsSQL())
	if err := fillFast(app, []string{"customers", "orders", "order_items", "webhook_inbox", "ops_events"}, inserts, nil); err != nil {
		return nil, fmt.Errorf("seed %d orders: %w", orders, err)
	}
	for i := range batches {
		if releasedBatch(i) {
			publicIDs = append(publicIDs, benchPublicID(i))
		}
	}
	return publicIDs, nil
}

// historyBatches is how many batches seedHistory writes for orders orders.
func historyBatches(orders int) int { return max(orders/ordersPerBatch, 1) }
