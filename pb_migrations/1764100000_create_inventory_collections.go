package pb_migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// Inventory and FEFO allocation (SOP-INV-01): batches carry their on-hand and allocated
// units (caches of inventory_movements and allocations, kept in the same transaction as
// every change); every change of stock is an inventory_movements row; what cannot be
// allocated waits in allocation_queue; orders gain awaiting_stock and allocated;
// products can be marked not batch-tracked.
func init() {
	m.Register(createInventoryCollections, func(app core.App) error {
		if err := dropCollections("inventory_stock", "allocation_waiting", "allocation_queue", "inventory_movements")(app); err != nil {
			return err
		}
		if err := setOrderStatuses(app, []string{"pending", "paid", "cancelled", "refunded"}, orderStatusHelpBefore); err != nil {
			return err
		}
		for name, fields := range map[string][]string{"products": {"not_batch_tracked"}, "batches": {"on_hand", "allocated"}} {
			c, err := app.FindCollectionByNameOrId(name)
			if err != nil {
				return err
			}
			for _, f := range fields {
				c.Fields.RemoveByName(f)
			}
			c.RemoveIndex("idx_batches_fefo_available")
			if err := app.Save(c); err != nil {
				return err
			}
		}
		allocations, err := app.FindCollectionByNameOrId("allocations")
		if err != nil {
			return err
		}
		allocations.RemoveIndex("idx_allocations_order_item")
		return app.Save(allocations)
	})
}

const (
	orderStatusHelpBefore = "Derived from Shopify: pending → paid → cancelled / refunded. Read-only."
	orderStatusHelp       = "pending → paid (from Shopify) → awaiting_stock or allocated (FEFO allocation) → cancelled / refunded. Read-only."
)

func setOrderStatuses(app core.App, values []string, help string) error {
	orders, err := app.FindCollectionByNameOrId("orders")
	if err != nil {
		return err
	}
	f, ok := orders.Fields.GetByName("status").(*core.SelectField)
	if !ok {
		return fmt.Errorf("orders.status is not a select field")
	}
	f.Values, f.Help = values, help
	return app.Save(orders)
}

func createInventoryCollections(app core.App) error {
	if err := setOrderStatuses(app, []string{"pending", "paid", "awaiting_stock", "allocated", "cancelled", "refunded"}, orderStatusHelp); err != nil {
		return err
	}
	products, err := app.FindCollectionByNameOrId("products")
	if err != nil {
		return err
	}
	// PocketBase bools start false, so the flag says the exception: existing and new
	// products are batch-tracked unless staff tick it.
	products.Fields.Add(boolField("not_batch_tracked", "Tick for goods made to order or personalised (cakes, custom items): their lines skip batch allocation"))
	if err := app.Save(products); err != nil {
		return err
	}

	batches, err := app.FindCollectionByNameOrId("batches")
	if err != nil {
		return err
	}
	batches.Fields.Add(
		nonNegativeInt("on_hand", "Units in store: the sum of the batch's inventory_movements. Set by opspine; read-only."),
		nonNegativeInt("allocated", "Units held for orders: the sum of its active allocations. Set by opspine; read-only."),
	)
	// FEFO candidates of a product: only batches with units free, so exhausted history is never read
	batches.AddIndex("idx_batches_fefo_available", false, "product, expiry_date, produced_at, code",
		"status = 'released' AND on_hand > allocated")
	if err := app.Save(batches); err != nil {
		return err
	}
	orders, err := app.FindCollectionByNameOrId("orders")
	if err != nil {
		return err
	}
	orderItems, err := app.FindCollectionByNameOrId("order_items")
	if err != nil {
		return err
	}
	allocations, err := app.FindCollectionByNameOrId("allocations")
	if err != nil {
		return err
	}
	allocations.AddIndex("idx_allocations_order_item", false, "order_item, status", "")
	if err := app.Save(allocations); err != nil {
		return err
	}

	movements := core.NewBaseCollection("inventory_movements")
	movements.Fields.Add(
		&core.RelationField{Name: "batch", CollectionId: batches.Id, MaxSelect: 1, Required: true},
		&core.RelationField{Name: "product", CollectionId: products.Id, MaxSelect: 1},
		selectField("type", "production, dispatch, adjustment and count_correction change the units on hand; "+
			"allocation and release change the units held for orders",
			"production", "allocation", "release", "dispatch", "adjustment", "count_correction"),
		intField("quantity", "Signed change: of on_hand, or of allocated for allocation and release"),
		intField("before", "The batch's on_hand (allocated for allocation and release) before"),
		intField("after", "The same figure after"),
		textField("reference", "What caused it: order:<id>, allocation:<id>, batch:<id>"),
		relationField("order", "The order, for allocation, release and dispatch", orders),
		textField("actor", "Who: staff:<id>, superuser:<id>, shopify or system"),
		longText("reason", "Why"),
	)
	movements.Fields.Add(timestamps()...)
	movements.AddIndex("idx_inventory_movements_batch", false, "batch, created", "")
	movements.AddIndex("idx_inventory_movements_product_type", false, "product, type, created", "")
	movements.AddIndex("idx_inventory_movements_type", false, "type, created", "")
	readableByStaff(movements)

	queue := core.NewBaseCollection("allocation_queue")
	queue.Fields.Add(
		&core.RelationField{Name: "order", CollectionId: orders.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
		&core.RelationField{Name: "order_item", CollectionId: orderItems.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
		&core.RelationField{Name: "product", CollectionId: products.Id, MaxSelect: 1, Required: true},
		nonNegativeInt("quantity", "Units the line still waits for"),
		selectField("state", "pending: waits for stock; allocated: stock came; cancelled: the order was cancelled or refunded",
			"pending", "allocated", "cancelled"),
		dateField("resolved_at", "When it stopped waiting"),
	)
	queue.Fields.Add(timestamps()...)
	queue.AddIndex("idx_allocation_queue_item_pending", true, "order_item", "state = 'pending'")
	queue.AddIndex("idx_allocation_queue_product_pending", false, "product, created", "state = 'pending'")
	queue.AddIndex("idx_allocation_queue_state", false, "state, created", "")
	queue.AddIndex("idx_allocation_queue_order", false, "`order`, state", "")
	readableByStaff(queue)
	if err := saveAll(app, movements, queue); err != nil {
		return err
	}
	if err := backfillStock(app); err != nil {
		return err
	}
	return createInventoryViews(app)
}

// backfillStock gives batches made before inventory existed their production movement
// and caches, so that on_hand is the sum of movements from the start.
func backfillStock(app core.App) error {
	for _, q := range []string{
		`INSERT INTO inventory_movements (id, batch, product, type, quantity, before, after, reference, "order", actor, reason, created, updated)
		 SELECT lower(hex(randomblob(8))), b.id, b.product, 'production', b.quantity_units, 0, b.quantity_units, 'batch:' || b.id, '',
		  'system', 'opening stock: units produced', b.created, b.created
		 FROM batches b WHERE b.quantity_units > 0`,
		`UPDATE batches SET on_hand = quantity_units,
		 allocated = (SELECT COALESCE(SUM(quantity), 0) FROM allocations a WHERE a.batch = batches.id AND a.status = 'allocated')`,
	} {
		if _, err := app.DB().NewQuery(q).Execute(); err != nil {
			return fmt.Errorf("backfill stock: %w", err)
		}
	}
	return nil
}

// createInventoryViews adds read-only views for staff in the admin UI.
func createInventoryViews(app core.App) error {
	stock := core.NewViewCollection("inventory_stock")
	stock.ViewQuery = `SELECT b.id AS id, p.sku AS sku, p.name AS product_name, b.code AS batch_code, b.status AS status,
		b.expiry_date AS expiry_date,
		(CAST(julianday(date(b.expiry_date)) - julianday(date('now')) AS INTEGER)) AS days_to_expiry,
		b.on_hand AS on_hand, b.allocated AS allocated, (b.on_hand - b.allocated) AS available
		FROM batches b JOIN products p ON p.id = b.product
		WHERE b.on_hand > 0 OR b.allocated > 0`
	readableByStaff(stock)
	waiting := core.NewViewCollection("allocation_waiting")
	waiting.ViewQuery = `SELECT q.id AS id, o.order_number AS order_number, q."order" AS order_id, p.sku AS sku,
		q.quantity AS waiting_units, oi.current_quantity AS line_units, q.created AS waiting_since
		FROM allocation_queue q JOIN orders o ON o.id = q."order" JOIN products p ON p.id = q.product
		JOIN order_items oi ON oi.id = q.order_item
		WHERE q.state = 'pending'`
	readableByStaff(waiting)
	return saveAll(app, stock, waiting)
}
