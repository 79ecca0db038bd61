package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// The collections of the appliance and of Shopify ingestion. Names follow DESIGN.md:
// plural snake_case collections, singular snake_case fields, money in minor units.
func init() {
	m.Register(createIngestionCollections, dropCollections(
		"data_requests", "monitoring_runs", "ops_events", "dead_letters", "webhook_inbox",
		"refunds", "order_items", "orders", "products", "customers", "shops", "staff",
	))
}

func createIngestionCollections(app core.App) error {
	staff := core.NewAuthCollection("staff")
	staff.Fields.Add(
		requiredText("name", "Full name shown in the ops portal and in ops events"),
		selectField("role", "admin: everything; manager: stock and overrides; operator: day-to-day actions", "admin", "manager", "operator"),
		boolField("active", "Only active staff can sign in"),
	)
	staff.AuthRule = strPtr("active = true")
	staff.ListRule = strPtr(`@request.auth.id = id || @request.auth.role = "admin"`)
	staff.ViewRule = staff.ListRule
	staff.AddIndex("idx_staff_role", false, "role", "")

	shops := core.NewBaseCollection("shops")
	shops.Fields.Add(
		requiredText("domain", "The shop's myshopify.com domain, as in X-Shopify-Shop-Domain"),
		textField("name", "Display name"),
		&core.TextField{Name: "webhook_secrets", Hidden: true, Max: 2000,
			Help: "Webhook signing secrets, comma separated (two during rotation). Write-only: never shown again once saved; leave empty to keep the current ones."},
		textField("order_number_prefix", "Prefix added to Shopify order numbers (e.g. PR- gives PR-1001)"),
		dateField("orders_synced_at", "Reconciliation cursor: orders updated before this time are known"),
		dateField("uninstalled_at", "When Shopify told us the app was uninstalled"),
		dateField("redacted_at", "When shop/redact erased this shop's personal data"),
	)
	shops.Fields.Add(timestamps()...)
	shops.AddIndex("idx_shops_domain", true, "domain", "")
	readableByStaff(shops)

	if err := saveAll(app, staff, shops); err != nil {
		return err
	}

	customers := core.NewBaseCollection("customers")
	customers.Fields.Add(
		relationField("shop", "Shop the customer bought from", shops),
		textField("shopify_customer_id", "Shopify customer id (kept as text: ids exceed 2^53)"),
		textField("email", "Email, lower-cased"),
		textField("first_name", ""),
		textField("last_name", ""),
		textField("phone", ""),
		jsonField("default_address", "Default address from Shopify"),
		boolField("marketing_opt_in", "Accepts email marketing"),
		dateField("shopify_updated_at", "updated_at of the newest Shopify data applied"),
		dateField("redacted_at", "When customers/redact or shop/redact erased this customer's personal data"),
	)
	customers.Fields.Add(timestamps()...)
	customers.AddIndex("idx_customers_shopify_id", true, "shop, shopify_customer_id", "shopify_customer_id != ''")
	customers.AddIndex("idx_customers_email", false, "shop, email", "email != ''")
	readableByStaff(customers)

	products := core.NewBaseCollection("products")
	products.Fields.Add(
		requiredText("sku", "Stock keeping unit; Shopify line items are matched to products by SKU"),
		requiredText("name", ""),
		boolField("active", "Sold now"),
	)
	products.Fields.Add(timestamps()...)
	products.AddIndex("idx_products_sku", true, "sku", "")
	readableByStaff(products)
	products.CreateRule = strPtr(staffRule)
	products.UpdateRule = strPtr(staffRule)

	if err := saveAll(app, customers, products); err != nil {
		return err
	}

	orders := core.NewBaseCollection("orders")
	orders.Fields.Add(
		relationField("shop", "", shops),
		textField("shopify_order_id", "Shopify order id (text: ids exceed 2^53)"),
		textField("order_number", "Shop prefix + Shopify order number, as staff and customers see it"),
		relationField("customer", "", customers),
		textField("email", "Contact email on the order"),
		selectField("status", "Derived from Shopify: pending → paid → cancelled / refunded. Read-only.",
			"pending", "paid", "cancelled", "refunded"),
		textField("financial_status", "Shopify financial_status, as received"),
		textField("fulfillment_status", "Shopify fulfillment_status, as received (empty when null)"),
		requiredText("currency", "ISO 4217 code of every amount on the order"),
		intField("subtotal_minor", "Subtotal in minor units (pence)"),
		intField("discount_minor", "Total discounts in minor units"),
		intField("shipping_minor", "Shipping in minor units"),
		intField("tax_minor", "Tax in minor units"),
		intField("total_minor", "Total in minor units"),
		intField("refunded_minor", "Sum of refunds in minor units"),
		jsonField("shipping_address", "Shipping address"),
		textField("tags", "Shopify tags"),
		longText("note", "Order note from the customer"),
		boolField("has_unknown_sku", "A line item's SKU matches no product"),
		dateField("shopify_created_at", ""),
		dateField("shopify_updated_at", "updated_at of the newest Shopify data applied; older deliveries never overwrite it"),
		dateField("cancelled_at", ""),
		textField("cancel_reason", ""),
		dateField("redacted_at", "When personal data on this order was erased"),
	)
	orders.Fields.Add(timestamps()...)
	orders.AddIndex("idx_orders_shopify_id", true, "shop, shopify_order_id", "")
	orders.AddIndex("idx_orders_customer", false, "customer", "")
	orders.AddIndex("idx_orders_status_created", false, "status, shopify_created_at", "")
	orders.AddIndex("idx_orders_shopify_updated", false, "shopify_updated_at", "")
	readableByStaff(orders)
	if err := app.Save(orders); err != nil {
		return err
	}

	orderItems := core.NewBaseCollection("order_items")
	orderItems.Fields.Add(
		&core.RelationField{Name: "order", CollectionId: orders.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
		relationField("product", "Matched by SKU; empty when the SKU is unknown", products),
		textField("shopify_line_item_id", "Shopify line item id"),
		textField("shopify_product_id", ""),
		textField("shopify_variant_id", ""),
		textField("sku", ""),
		textField("title", ""),
		textField("variant_title", ""),
		intField("quantity", ""),
		intField("current_quantity", "Quantity after order edits and refunds"),
		intField("unit_price_minor", "Unit price in minor units"),
		intField("discount_minor", "Line discount in minor units"),
		jsonField("properties", "Line item properties (personalisation), normalised to name/value pairs"),
		boolField("unknown_sku", "No product has this SKU: kept, not dropped, and flagged for staff"),
	)
	orderItems.Fields.Add(timestamps()...)
	orderItems.AddIndex("idx_order_items_line_item", true, "shopify_line_item_id", "")
	orderItems.AddIndex("idx_order_items_order", false, "`order`", "")
	orderItems.AddIndex("idx_order_items_product", false, "product", "product != ''")
	readableByStaff(orderItems)

	refunds := core.NewBaseCollection("refunds")
	refunds.Fields.Add(
		&core.RelationField{Name: "order", CollectionId: orders.Id, MaxSelect: 1, Required: true, CascadeDelete: true},
		textField("shopify_refund_id", ""),
		intField("amount_minor", "Money returned to the customer, in minor units"),
		textField("currency", ""),
		longText("note", ""),
		jsonField("line_items", "Refunded line items: line item id, quantity, restock type"),
		dateField("shopify_created_at", ""),
	)
	refunds.Fields.Add(timestamps()...)
	refunds.AddIndex("idx_refunds_shopify_id", true, "shopify_refund_id", "")
	refunds.AddIndex("idx_refunds_order", false, "`order`", "")
	readableByStaff(refunds)

	if err := saveAll(app, orderItems, refunds); err != nil {
		return err
	}

	inbox := core.NewBaseCollection("webhook_inbox")
	inbox.Fields.Add(
		requiredText("source", "shopify_webhook, or shopify_reconcile for orders fetched by the reconciliation job"),
		requiredText("topic", "Shopify topic, e.g. orders/create"),
		requiredText("shop_domain", ""),
		requiredText("webhook_id", "X-Shopify-Webhook-Id: the same delivery retried keeps it, so it deduplicates"),
		textField("event_id", "X-Shopify-Event-Id: one event sent to several subscriptions shares it"),
		textField("resource_id", "Shopify id of the order or customer in the payload"),
		dateField("triggered_at", "X-Shopify-Triggered-At"),
		textField("api_version", "X-Shopify-API-Version"),
		jsonField("headers", "Request headers (signature removed)"),
		longText("payload", "Raw body exactly as received (redacted on customers/redact)"),
		selectField("status", "pending → processed | skipped; failed is retried with backoff; dead needs a person",
			"pending", "processed", "failed", "dead", "skipped"),
		nonNegativeInt("attempts", "Processing attempts so far"),
		longText("last_error", ""),
		dateField("next_attempt_at", "When the retry job tries a failed delivery again"),
		dateField("received_at", "When the delivery was committed"),
		dateField("processed_at", "When processing last finished"),
		nonNegativeInt("processing_ms", "Duration of the last processing attempt"),
		nonNegativeInt("receive_ms", "Time from request start to commit"),
	)
	inbox.Fields.Add(timestamps()...)
	inbox.AddIndex("idx_inbox_webhook_id", true, "shop_domain, webhook_id", "")
	inbox.AddIndex("idx_inbox_retry_queue", false, "status, next_attempt_at", "status = 'pending' OR status = 'failed'")
	inbox.AddIndex("idx_inbox_received", false, "received_at", "")
	inbox.AddIndex("idx_inbox_status_received", false, "status, received_at", "")
	inbox.AddIndex("idx_inbox_processed", false, "processed_at", "")
	inbox.AddIndex("idx_inbox_resource", false, "resource_id", "resource_id != ''")
	readableByStaff(inbox)

	deadLetters := core.NewBaseCollection("dead_letters")
	deadLetters.Fields.Add(
		requiredText("source", "Where the message came from, e.g. shopify_webhook"),
		relationField("inbox", "The inbox row, when the message came through one", inbox),
		textField("topic", ""),
		textField("shop_domain", ""),
		longText("reason", "Why it can never succeed as it is"),
		longText("payload", "The message as received (redacted on customers/redact)"),
		nonNegativeInt("attempts", ""),
		boolField("resolved", "A person replayed or dismissed it"),
		dateField("resolved_at", ""),
		textField("resolved_by", ""),
	)
	deadLetters.Fields.Add(timestamps()...)
	deadLetters.AddIndex("idx_dead_letters_open", false, "resolved, created", "")
	deadLetters.AddIndex("idx_dead_letters_created", false, "created", "")
	deadLetters.AddIndex("idx_dead_letters_inbox", false, "inbox", "inbox != ''")
	readableByStaff(deadLetters)

	opsEvents := core.NewBaseCollection("ops_events")
	opsEvents.Fields.Add(
		requiredText("entity_type", "order, customer, shop, webhook, job ..."),
		textField("entity_id", "Record id of the entity (or its outside id when it has no record)"),
		requiredText("kind", "What happened, e.g. order.paid, webhook.rejected"),
		longText("message", "One sentence a person can read; never personal data"),
		textField("actor", "Who: system, shopify, a job name, or staff:<id>"),
		jsonField("meta", "Details"),
	)
	opsEvents.Fields.Add(timestamps()...)
	opsEvents.AddIndex("idx_ops_events_entity", false, "entity_type, entity_id", "")
	opsEvents.AddIndex("idx_ops_events_kind_created", false, "kind, created", "")
	readableByStaff(opsEvents)

	runs := core.NewBaseCollection("monitoring_runs")
	runs.Fields.Add(
		requiredText("name", "Job or check name, e.g. webhook-retry"),
		selectField("kind", "", "job", "check"),
		selectField("outcome", "", "running", "ok", "warning", "critical", "error", "timeout"),
		dateField("started_at", ""),
		dateField("finished_at", ""),
		nonNegativeInt("duration_ms", ""),
		longText("summary", "What the run did, in one line"),
		longText("error", ""),
		jsonField("figures", "Numbers the run measured"),
		boolField("alerted", "Whether this run raised an alert"),
		textField("trigger", "schedule, manual (with staff id) or startup"),
	)
	runs.Fields.Add(timestamps()...)
	runs.AddIndex("idx_monitoring_runs_name_started", false, "name, started_at", "")
	readableByStaff(runs)

	dataRequests := core.NewBaseCollection("data_requests")
	dataRequests.Fields.Add(
		relationField("shop", "", shops),
		relationField("customer", "The customer the request is about, when we hold them", customers),
		textField("shopify_customer_id", ""),
		textField("shopify_request_id", "data_request.id from Shopify"),
		jsonField("orders_requested", "Shopify order ids the customer asked about"),
		relationField("inbox", "The customers/data_request delivery", inbox),
		selectField("status", "open until staff export the data and send it to the shop owner", "open", "exported"),
		dateField("exported_at", ""),
		textField("exported_by", ""),
	)
	dataRequests.Fields.Add(timestamps()...)
	readableByStaff(dataRequests)

	return saveAll(app, inbox, deadLetters, opsEvents, runs, dataRequests)
}
