package ingest

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/shopify"
	"github.com/opspine/opspine/app/sqlstore"
)

type storedOrder struct {
	ID            string `db:"id"`
	Status        string `db:"status"`
	UpdatedAt     string `db:"shopify_updated_at"`
	TotalMinor    int64  `db:"total_minor"`
	RefundedMinor int64  `db:"refunded_minor"`
	Redacted      string `db:"redacted_at"`
	Customer      string `db:"customer"`
}

func findOrder(db dbx.Builder, shopID string, shopifyID shopify.ID) (storedOrder, bool, error) {
	var o storedOrder
	err := sqlstore.QueryRow(db, `SELECT id, status, shopify_updated_at, total_minor, refunded_minor, redacted_at, customer
		FROM orders WHERE shop = {:shop} AND shopify_order_id = {:sid}`,
		dbx.Params{"shop": shopID, "sid": string(shopifyID)},
		&o.ID, &o.Status, &o.UpdatedAt, &o.TotalMinor, &o.RefundedMinor, &o.Redacted, &o.Customer)
	if errors.Is(err, sql.ErrNoRows) {
		return o, false, nil
	}
	if err != nil {
		return o, false, fmt.Errorf("find order %s: %w", shopifyID, err)
	}
	return o, true, nil
}

// orderNumber is what staff and customers call the order: the shop's prefix and
// Shopify's number ("PR-1001").
func orderNumber(prefix string, o shopify.Order) string {
	n := o.OrderNumber.String()
	if n == "" {
		n = strings.TrimPrefix(o.Name, "#")
	}
	if n == "" {
		n = string(o.ID)
	}
	return prefix + n
}

func applyOrder(c *applyContext, payload []byte) (applied, error) {
	parsed, err := c.parsedOrder(payload)
	if err != nil {
		return applied{}, permanent("%v", err)
	}
	o, amounts := parsed.Order, parsed.Amounts
	existing, found, err := findOrder(c.db, c.shop.ID, o.ID)
	if err != nil {
		return applied{}, err
	}
	number := orderNumber(c.shop.OrderNumberPrefix, o)
	if found {
		stored, err := sqlstore.ParseTime(existing.UpdatedAt)
		if err != nil {
			return applied{}, err
		}
		if !o.UpdatedAt.IsZero() && stored.After(o.UpdatedAt.Time) {
			msg := fmt.Sprintf("Order %s: ignored %s from %s, already have Shopify data from %s",
				number, c.row.Topic, o.UpdatedAt.Format("15:04:05.000"), stored.Format("15:04:05.000"))
			return applied{Status: StatusSkipped, ResourceID: orderResource(o.ID), Message: msg, RedactPayload: existing.Redacted != "",
				Events: []opsevents.Event{{EntityType: "order", EntityID: existing.ID, Kind: "order.stale_delivery_ignored", Message: msg}}}, nil
		}
	}

	var sc shopify.Customer
	if o.Customer != nil {
		sc = *o.Customer
	}
	email := normaliseEmail(o.Email)
	if email == "" {
		email = normaliseEmail(o.ContactEmail)
	}
	// An erased order keeps its customer link and never gains personal data again.
	customerID, redacted := existing.Customer, existing.Redacted != ""
	if !redacted {
		if customerID, _, redacted, err = upsertCustomer(c, sc, email); err != nil {
			return applied{}, err
		}
	}

	// products are matched before the order is written, so a new order is written
	// with its has_unknown_sku flag instead of being updated for it afterwards
	products, unknown, err := matchProducts(c.batch, parsed.Lines)
	if err != nil {
		return applied{}, err
	}

	status := KeepLaterStatus(existing.Status, DeriveOrderStatus(o, amounts.Total, existing.RefundedMinor))
	cols := dbx.Params{
		"order_number":       number,
		"customer":           customerID,
		"status":             status,
		"financial_status":   o.FinancialStatus,
		"fulfillment_status": deref(o.FulfillmentStatus),
		"currency":           strings.ToUpper(o.Currency),
		"subtotal_minor":     amounts.Subtotal,
		"discount_minor":     amounts.Discount,
		"shipping_minor":     amounts.Shipping,
		"tax_minor":          amounts.Tax,
		"total_minor":        amounts.Total,
		"tags":               o.Tags,
		"shopify_created_at": sqlstore.FormatTime(o.CreatedAt.Time),
		"shopify_updated_at": sqlstore.FormatTime(o.UpdatedAt.Time),
		"cancelled_at":       sqlstore.FormatTime(o.CancelledAt.Time),
		"cancel_reason":      o.CancelReason,
	}
	if !redacted {
		cols["email"] = email
		cols["note"] = o.Note
		cols["shipping_address"] = jsonOrNull(o.ShippingAddress)
	}
	orderID := existing.ID
	if found {
		err = sqlstore.Update(c.db, "orders", orderID, c.now, cols)
	} else {
		cols["shop"] = c.shop.ID
		cols["shopify_order_id"] = string(o.ID)
		cols["refunded_minor"] = 0
		cols["has_unknown_sku"] = writesUnknownSKU(parsed.Lines, products)
		orderID, err = sqlstore.Insert(c.db, "orders", c.now, cols)
	}
	if err != nil {
		return applied{}, err
	}
	if err := upsertLineItems(c, orderID, parsed.Lines, products, redacted); err != nil {
		return applied{}, err
	}
	if found {
		// items of earlier deliveries that this one does not list count too
		if _, err := sqlstore.Exec(c.db, `UPDATE orders SET has_unknown_sku = EXISTS
			(SELECT 1 FROM order_items WHERE "order" = {:id} AND unknown_sku) WHERE id = {:id}`,
			dbx.Params{"id": orderID}); err != nil {
			return applied{}, fmt.Errorf("flag unknown SKUs on order %s: %w", number, err)
		}
	}

	events := orderEvents(orderID, number, existing.Status, status, found, c.row.Topic)
	if len(unknown) > 0 {
		events = append(events, opsevents.Event{EntityType: "order", EntityID: orderID, Kind: "order.unknown_sku",
			Message: fmt.Sprintf("Order %s has line items whose SKU matches no product: %s", number, strings.Join(unknown, ", ")),
			Meta:    map[string]any{"skus": unknown}})
	}
	// an allocated order's update still runs the hooks: line edits re-sync its allocation
	if !found || existing.Status != status || IsAfterPaid(status) {
		ch := OrderChange{OrderID: orderID, ShopifyOrderID: string(o.ID), From: existing.Status, To: status}
		if err := c.orderChanged(ch); err != nil {
			return applied{}, err
		}
	}
	return applied{Status: StatusProcessed, ResourceID: orderResource(o.ID), Message: events[0].Message, Events: events, RedactPayload: redacted}, nil
}

func orderEvents(orderID, number, from, to string, found bool, topic string) []opsevents.Event {
	meta := map[string]any{"topic": topic, "from": from, "to": to}
	switch {
	case !found:
		return []opsevents.Event{{EntityType: "order", EntityID: orderID, Kind: "order.created", Meta: meta,
			Message: fmt.Sprintf("Order %s received from Shopify (%s), status %s", number, topic, to)}}
	case from != to:
		return []opsevents.Event{{EntityType: "order", EntityID: orderID, Kind: "order." + to, Meta: meta,
			Message: fmt.Sprintf("Order %s is now %s (was %s)", number, to, from)}}
	default:
		return []opsevents.Event{{EntityType: "order", EntityID: orderID, Kind: "order.updated", Meta: meta,
			Message: fmt.Sprintf("Order %s updated from Shopify (%s)", number, topic)}}
	}
}

func jsonOrNull(raw json.RawMessage) string {
	if len(raw) == 0 || !json.Valid(raw) {
		return "null"
	}
	return string(raw)
}

// parsedOrder is the delivery's order payload, parsed before the transaction when
// ProcessBatch could, here otherwise.
func (c *applyContext) parsedOrder(payload []byte) (shopify.ParsedOrder, error) {
	if c.row.order != nil {
		return c.row.order.ParsedOrder, c.row.order.err
	}
	return shopify.ParseOrder(payload)
}

// matchProducts returns the product id of each line, matched by SKU ("" when none
// matches), and the SKUs that matched none (kept and flagged, never dropped).
func matchProducts(b *batch, lines []shopify.ParsedLine) (products []string, unknown []string, err error) {
	products = make([]string, len(lines))
	for i, l := range lines {
		if products[i], err = b.productBySKU(l.SKU); err != nil {
			return nil, nil, err
		}
		if products[i] == "" {
			unknown = append(unknown, fmt.Sprintf("%q", l.SKU))
		}
	}
	return products, unknown, nil
}

// writesUnknownSKU says whether a new order's items, once lines are written, include
// one whose SKU matches no product. A line id listed twice is written twice, and the
// last one stays.
func writesUnknownSKU(lines []shopify.ParsedLine, products []string) bool {
	unknownByLine := make(map[shopify.ID]bool, len(lines))
	for i, l := range lines {
		unknownByLine[l.ID] = products[i] == ""
	}
	for _, unknown := range unknownByLine {
		if unknown {
			return true
		}
	}
	return false
}

// upsertLineItems writes the order's lines with the products matchProducts found.
func upsertLineItems(c *applyContext, orderID string, lines []shopify.ParsedLine, products []string, redacted bool) error {
	ts := sqlstore.FormatTime(c.now)
	for i, l := range lines {
		props := l.PropertiesJSON
		if redacted {
			props = "[]"
		}
		_, err := sqlstore.Exec(c.db, upsertLineItemSQL, dbx.Params{
			"id": sqlstore.NewID(), "order": orderID, "product": products[i], "line": string(l.ID),
			"pid": string(l.ProductID), "vid": string(l.VariantID), "sku": l.SKU, "title": l.Title,
			"vtitle": deref(l.VariantTitle), "qty": l.Quantity, "cqty": l.CurrentQuantity, "price": l.Price,
			"discount": l.Discount, "props": props, "unknown": products[i] == "", "ts": ts,
		})
		if err != nil {
			return fmt.Errorf("save line item %s: %w", l.ID, err)
		}
	}
	return nil
}

const upsertLineItemSQL = `INSERT INTO order_items
	(id, "order", product, shopify_line_item_id, shopify_product_id, shopify_variant_id, sku, title, variant_title,
	 quantity, current_quantity, unit_price_minor, discount_minor, properties, unknown_sku, created, updated)
	VALUES ({:id}, {:order}, {:product}, {:line}, {:pid}, {:vid}, {:sku}, {:title}, {:vtitle},
	 {:qty}, {:cqty}, {:price}, {:discount}, {:props}, {:unknown}, {:ts}, {:ts})
	ON CONFLICT (shopify_line_item_id) DO UPDATE SET
	 "order" = excluded."order", product = excluded.product, shopify_product_id = excluded.shopify_product_id,
	 shopify_variant_id = excluded.shopify_variant_id, sku = excluded.sku, title = excluded.title,
	 variant_title = excluded.variant_title, quantity = excluded.quantity, current_quantity = excluded.current_quantity,
	 unit_price_minor = excluded.unit_price_minor, discount_minor = excluded.discount_minor,
	 properties = excluded.properties, unknown_sku = excluded.unknown_sku, updated = excluded.updated`
