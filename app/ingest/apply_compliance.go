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

// Resource ids tie inbox rows to what they are about, so redaction can find them.
func orderResource(id shopify.ID) string    { return "order:" + string(id) }
func customerResource(id shopify.ID) string { return "customer:" + string(id) }

func parseCompliance(payload []byte, topic string) (shopify.ComplianceRequest, error) {
	var req shopify.ComplianceRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return req, permanent("%s payload is not valid: %v", topic, err)
	}
	return req, nil
}

// applyDataRequest records a customer's request for their data; staff export it as
// JSON (GET /api/ops/customers/{id}/export) and send it to the shop owner.
func applyDataRequest(c *applyContext, payload []byte) (applied, error) {
	req, err := parseCompliance(payload, c.row.Topic)
	if err != nil {
		return applied{}, err
	}
	if req.Customer == nil || (req.Customer.ID == "" && req.Customer.Email == "") {
		return applied{}, permanent("customers/data_request names no customer")
	}
	cust, found, err := findCustomer(c.db, c.shop.ID, req.Customer.ID, normaliseEmail(req.Customer.Email))
	if err != nil {
		return applied{}, err
	}
	orders, _ := json.Marshal(req.OrdersRequested)
	requestID := ""
	if req.DataRequest != nil {
		requestID = string(req.DataRequest.ID)
	}
	id, err := sqlstore.Insert(c.db, "data_requests", c.now, dbx.Params{
		"shop": c.shop.ID, "customer": cust.ID, "shopify_customer_id": string(req.Customer.ID),
		"shopify_request_id": requestID, "orders_requested": string(orders), "inbox": c.row.ID, "status": "open",
	})
	if err != nil {
		return applied{}, err
	}
	msg := fmt.Sprintf("Customer %s asked for their data; export it within 30 days", req.Customer.ID)
	if !found {
		msg = fmt.Sprintf("Customer %s asked for their data; opspine holds no customer record for them", req.Customer.ID)
	}
	return applied{Status: StatusProcessed, ResourceID: customerResource(req.Customer.ID), Message: msg,
		Events: []opsevents.Event{{EntityType: "data_request", EntityID: id, Kind: "customer.data_requested", Message: msg,
			Meta: map[string]any{"customer": cust.ID}}}}, nil
}

// applyCustomerRedact erases one customer's personal data from customers, their orders
// and every stored payload about them. Amounts, SKUs and quantities stay.
func applyCustomerRedact(c *applyContext, payload []byte) (applied, error) {
	req, err := parseCompliance(payload, c.row.Topic)
	if err != nil {
		return applied{}, err
	}
	if req.Customer == nil || (req.Customer.ID == "" && req.Customer.Email == "") {
		return applied{}, permanent("customers/redact names no customer")
	}
	email := normaliseEmail(req.Customer.Email)
	var customerIDs []string
	err = c.db.NewQuery(`SELECT id FROM customers WHERE shop = {:shop} AND
		((shopify_customer_id != '' AND shopify_customer_id = {:sid}) OR (email != '' AND email = {:email}))`).
		Bind(dbx.Params{"shop": c.shop.ID, "sid": string(req.Customer.ID), "email": email}).Column(&customerIDs)
	if err != nil {
		return applied{}, fmt.Errorf("find customers to redact: %w", err)
	}
	var orderIDs []string
	q := c.db.Select("id").From("orders").Where(dbx.HashExp{"shop": c.shop.ID}).
		AndWhere(dbx.Or(dbx.In("customer", toAny(customerIDs)...), dbx.In("shopify_order_id", idsToAny(req.OrdersToRedact)...)))
	if err := q.Column(&orderIDs); err != nil {
		return applied{}, fmt.Errorf("find orders to redact: %w", err)
	}
	var shopifyOrderIDs []string
	if err := c.db.Select("shopify_order_id").From("orders").Where(dbx.In("id", toAny(orderIDs)...)).Column(&shopifyOrderIDs); err != nil {
		return applied{}, err
	}
	resources := []string{customerResource(req.Customer.ID)}
	for _, id := range shopifyOrderIDs {
		resources = append(resources, "order:"+id)
	}
	for _, id := range req.OrdersToRedact {
		resources = append(resources, orderResource(id))
	}
	if err := redactCustomersAndOrders(c, customerIDs, orderIDs); err != nil {
		return applied{}, err
	}
	payloads, err := redactStoredPayloads(c, resources, []string{email, req.Customer.Phone})
	if err != nil {
		return applied{}, err
	}
	msg := fmt.Sprintf("Erased personal data of customer %s: %d customer record(s), %d order(s), %d stored payload(s)",
		req.Customer.ID, len(customerIDs), len(orderIDs), payloads)
	return applied{Status: StatusProcessed, ResourceID: customerResource(req.Customer.ID), Message: msg, RedactPayload: true,
		Events: []opsevents.Event{{EntityType: "customer", EntityID: strings.Join(customerIDs, ","), Kind: "customer.redacted", Message: msg,
			Meta: map[string]any{"customers": len(customerIDs), "orders": len(orderIDs), "payloads": payloads}}}}, nil
}

// applyShopRedact erases every customer's personal data for a shop (sent 48 hours after
// the app is uninstalled).
func applyShopRedact(c *applyContext, _ []byte) (applied, error) {
	var customerIDs, orderIDs []string
	if err := c.db.Select("id").From("customers").Where(dbx.HashExp{"shop": c.shop.ID}).Column(&customerIDs); err != nil {
		return applied{}, err
	}
	if err := c.db.Select("id").From("orders").Where(dbx.HashExp{"shop": c.shop.ID}).Column(&orderIDs); err != nil {
		return applied{}, err
	}
	if err := redactCustomersAndOrders(c, customerIDs, orderIDs); err != nil {
		return applied{}, err
	}
	var rows []struct {
		ID      string `db:"id"`
		Payload string `db:"payload"`
	}
	if err := c.db.NewQuery(`SELECT id, payload FROM webhook_inbox WHERE shop_domain = {:d} AND id != {:self}`).
		Bind(dbx.Params{"d": c.shop.Domain, "self": c.row.ID}).All(&rows); err != nil {
		return applied{}, err
	}
	for _, r := range rows {
		if err := redactPayloadRow(c, r.ID, r.Payload); err != nil {
			return applied{}, err
		}
	}
	if err := sqlstore.Update(c.db, "shops", c.shop.ID, c.now, dbx.Params{"redacted_at": sqlstore.FormatTime(c.now)}); err != nil {
		return applied{}, err
	}
	msg := fmt.Sprintf("Erased personal data for shop %s: %d customers, %d orders, %d stored payloads",
		c.shop.Domain, len(customerIDs), len(orderIDs), len(rows))
	return applied{Status: StatusProcessed, ResourceID: "shop:" + c.shop.Domain, Message: msg, RedactPayload: true,
		Events: []opsevents.Event{{EntityType: "shop", EntityID: c.shop.ID, Kind: "shop.redacted", Message: msg}}}, nil
}

func redactCustomersAndOrders(c *applyContext, customerIDs, orderIDs []string) error {
	ts := sqlstore.FormatTime(c.now)
	if len(customerIDs) > 0 {
		if _, err := c.db.Update("customers", dbx.Params{"email": "", "first_name": "", "last_name": "", "phone": "",
			"default_address": nil, "redacted_at": ts, "updated": ts}, dbx.In("id", toAny(customerIDs)...)).Execute(); err != nil {
			return fmt.Errorf("redact customers: %w", err)
		}
	}
	if len(orderIDs) > 0 {
		if _, err := c.db.Update("orders", dbx.Params{"email": "", "note": "", "shipping_address": nil,
			"redacted_at": ts, "updated": ts}, dbx.In("id", toAny(orderIDs)...)).Execute(); err != nil {
			return fmt.Errorf("redact orders: %w", err)
		}
		if _, err := c.db.Update("order_items", dbx.Params{"properties": "[]", "updated": ts},
			dbx.In("order", toAny(orderIDs)...)).Execute(); err != nil {
			return fmt.Errorf("redact line item properties: %w", err)
		}
	}
	return nil
}

// redactStoredPayloads erases personal data in the inbox rows and dead letters about
// these resources, and in unprocessed rows (no resource id yet) that mention one of
// the identifiers. It returns how many payloads it changed.
func redactStoredPayloads(c *applyContext, resources []string, identifiers []string) (int, error) {
	var rows []struct {
		ID      string `db:"id"`
		Payload string `db:"payload"`
	}
	err := c.db.Select("id", "payload").From("webhook_inbox").
		Where(dbx.HashExp{"shop_domain": c.shop.Domain}).AndWhere(dbx.In("resource_id", toAny(resources)...)).
		AndWhere(dbx.NewExp("resource_id != ''")). // lets SQLite use the partial index
		AndWhere(dbx.NewExp("id != {:self}", dbx.Params{"self": c.row.ID})).All(&rows)
	if err != nil {
		return 0, fmt.Errorf("find payloads to redact: %w", err)
	}
	var unprocessed []struct {
		ID      string `db:"id"`
		Payload string `db:"payload"`
	}
	err = c.db.NewQuery(`SELECT id, payload FROM webhook_inbox WHERE status IN ('pending','failed','dead')
		AND resource_id = '' AND shop_domain = {:d} AND id != {:self}`).
		Bind(dbx.Params{"d": c.shop.Domain, "self": c.row.ID}).All(&unprocessed)
	if err != nil {
		return 0, fmt.Errorf("find unprocessed payloads to redact: %w", err)
	}
	for _, r := range unprocessed {
		for _, ident := range identifiers {
			if ident != "" && strings.Contains(strings.ToLower(r.Payload), strings.ToLower(ident)) {
				rows = append(rows, r)
				break
			}
		}
	}
	for _, r := range rows {
		if err := redactPayloadRow(c, r.ID, r.Payload); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}

// redactPayloadRow redacts one inbox row's payload and its dead letters' copies.
func redactPayloadRow(c *applyContext, id, payload string) error {
	red := string(shopify.RedactPayload([]byte(payload)))
	if _, err := c.db.Update("webhook_inbox", dbx.Params{"payload": red}, dbx.HashExp{"id": id}).Execute(); err != nil {
		return fmt.Errorf("redact payload of delivery %s: %w", id, err)
	}
	if _, err := c.db.Update("dead_letters", dbx.Params{"payload": red},
		dbx.And(dbx.HashExp{"inbox": id}, dbx.NewExp("inbox != ''"))).Execute(); err != nil {
		return fmt.Errorf("redact dead letter of delivery %s: %w", id, err)
	}
	return nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func idsToAny(ids []shopify.ID) []any {
	out := make([]any, len(ids))
	for i, s := range ids {
		out[i] = string(s)
	}
	return out
}
