package ingest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/shopify"
	"github.com/opspine/opspine/app/sqlstore"
)

// applyRefund records a refund and, when refunds cover the total, marks the order
// refunded. A refund for an order not seen yet is a transient failure: the retry job
// tries again after orders/create (or the reconciliation job) has brought the order.
func applyRefund(c *applyContext, payload []byte) (applied, error) {
	var r shopify.Refund
	if err := json.Unmarshal(payload, &r); err != nil {
		return applied{}, permanent("refund payload is not valid: %v", err)
	}
	if r.ID == "" || r.OrderID == "" {
		return applied{}, permanent("refund payload has no id or no order_id")
	}
	order, found, err := findOrder(c.db, c.shop.ID, r.OrderID)
	if err != nil {
		return applied{}, err
	}
	if !found {
		return applied{}, fmt.Errorf("refund %s: order %s is not known yet", r.ID, r.OrderID)
	}
	var currency string
	if err := c.db.NewQuery(`SELECT currency FROM orders WHERE id = {:id}`).Bind(dbx.Params{"id": order.ID}).Row(&currency); err != nil {
		return applied{}, fmt.Errorf("refund %s: read order currency: %w", r.ID, err)
	}
	var amount int64
	for _, t := range r.Transactions {
		if t.Kind != "refund" || (t.Status != "success" && t.Status != "") {
			continue
		}
		cur := currency
		if t.Currency != "" {
			cur = t.Currency
		}
		v, err := t.Amount.MinorUnits(cur)
		if err != nil {
			return applied{}, permanent("refund %s: %v", r.ID, err)
		}
		amount += v
	}
	lines, _ := json.Marshal(r.RefundLineItems)
	ts := sqlstore.FormatTime(c.now)
	_, err = c.db.NewQuery(`INSERT INTO refunds (id, "order", shopify_refund_id, amount_minor, currency, note, line_items, shopify_created_at, created, updated)
		VALUES ({:id}, {:order}, {:rid}, {:amount}, {:currency}, {:note}, {:lines}, {:at}, {:ts}, {:ts})
		ON CONFLICT (shopify_refund_id) DO UPDATE SET amount_minor = excluded.amount_minor, note = excluded.note,
		 line_items = excluded.line_items, updated = excluded.updated`).Bind(dbx.Params{
		"id": sqlstore.NewID(), "order": order.ID, "rid": string(r.ID), "amount": amount, "currency": strings.ToUpper(currency),
		"note": r.Note, "lines": string(lines), "at": sqlstore.FormatTime(r.CreatedAt.Time), "ts": ts,
	}).Execute()
	if err != nil {
		return applied{}, fmt.Errorf("save refund %s: %w", r.ID, err)
	}
	var refunded int64
	if err := c.db.NewQuery(`SELECT COALESCE(SUM(amount_minor), 0) FROM refunds WHERE "order" = {:id}`).
		Bind(dbx.Params{"id": order.ID}).Row(&refunded); err != nil {
		return applied{}, fmt.Errorf("sum refunds of order %s: %w", r.OrderID, err)
	}
	status := order.Status
	if order.TotalMinor > 0 && refunded >= order.TotalMinor {
		status = OrderRefunded
	}
	if err := sqlstore.Update(c.db, "orders", order.ID, c.now, dbx.Params{"refunded_minor": refunded, "status": status}); err != nil {
		return applied{}, err
	}
	msg := fmt.Sprintf("Refund %s of %d minor units recorded on order %s", r.ID, amount, r.OrderID)
	events := []opsevents.Event{{EntityType: "order", EntityID: order.ID, Kind: "order.refund_recorded", Message: msg,
		Meta: map[string]any{"refund": string(r.ID), "amount_minor": amount, "refunded_minor": refunded}}}
	if status != order.Status {
		events = append(events, opsevents.Event{EntityType: "order", EntityID: order.ID, Kind: "order." + status,
			Message: fmt.Sprintf("Order %s is now %s (was %s)", r.OrderID, status, order.Status)})
		if err := c.orderChanged(OrderChange{OrderID: order.ID, ShopifyOrderID: string(r.OrderID), From: order.Status, To: status}); err != nil {
			return applied{}, err
		}
	}
	return applied{Status: StatusProcessed, ResourceID: orderResource(r.OrderID), Message: msg, Events: events}, nil
}
