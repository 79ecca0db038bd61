package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/sqlstore"
)

// Inbox sources.
const (
	SourceWebhook   = "shopify_webhook"
	SourceReconcile = "shopify_reconcile"
)

// Inbox statuses.
const (
	StatusPending   = "pending"
	StatusProcessed = "processed"
	StatusFailed    = "failed"
	StatusDead      = "dead"
	StatusSkipped   = "skipped"
)

// Delivery is one message from Shopify, as it is committed to webhook_inbox.
type Delivery struct {
	Source      string
	Topic       string
	ShopDomain  string
	WebhookID   string
	EventID     string
	TriggeredAt time.Time
	APIVersion  string
	Headers     map[string]string
	Payload     []byte
	// ReceiveTime is how long the request took from its start until just before the
	// commit (reading, verifying); stored as receive_ms.
	ReceiveTime time.Duration
}

// DeliveryFromRequest reads Shopify's headers into a Delivery. The signature header
// is left out: it is checked, never stored. A delivery without X-Shopify-Webhook-Id
// (Shopify always sends one) is keyed by the hash of its body, so it still deduplicates.
func DeliveryFromRequest(h http.Header, body []byte) Delivery {
	d := Delivery{
		Source:     SourceWebhook,
		Topic:      strings.TrimSpace(h.Get("X-Shopify-Topic")),
		ShopDomain: strings.ToLower(strings.TrimSpace(h.Get("X-Shopify-Shop-Domain"))),
		WebhookID:  strings.TrimSpace(h.Get("X-Shopify-Webhook-Id")),
		EventID:    strings.TrimSpace(h.Get("X-Shopify-Event-Id")),
		APIVersion: strings.TrimSpace(h.Get("X-Shopify-Api-Version")),
		Payload:    body,
		Headers:    map[string]string{},
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get("X-Shopify-Triggered-At")); err == nil {
		d.TriggeredAt = t
	}
	if d.WebhookID == "" {
		sum := sha256.Sum256(body)
		d.WebhookID = "sha256:" + hex.EncodeToString(sum[:])
	}
	for name, values := range h {
		if strings.EqualFold(name, "X-Shopify-Hmac-Sha256") || strings.EqualFold(name, "Authorization") || strings.EqualFold(name, "Cookie") {
			continue
		}
		if strings.HasPrefix(strings.ToLower(name), "x-shopify-") || strings.EqualFold(name, "Content-Type") || strings.EqualFold(name, "User-Agent") {
			d.Headers[name] = strings.Join(values, ", ")
		}
	}
	return d
}

// StoreDelivery commits d to webhook_inbox as pending, unless the same shop already
// delivered the same webhook id: then it stores nothing and returns the existing row
// with duplicate true. It returns only after the row is committed.
func StoreDelivery(db dbx.Builder, d Delivery, now time.Time) (id string, duplicate bool, err error) {
	headers, err := json.Marshal(d.Headers)
	if err != nil {
		return "", false, fmt.Errorf("store delivery: encode headers: %w", err)
	}
	topic := d.Topic
	if topic == "" {
		topic = "(missing)"
	}
	id = sqlstore.NewID()
	ts := sqlstore.FormatTime(now)
	receiveMs := d.ReceiveTime.Milliseconds()
	res, err := sqlstore.Exec(db, insertDeliverySQL, dbx.Params{
		"id": id, "source": d.Source, "topic": topic, "shop": d.ShopDomain, "webhook_id": d.WebhookID,
		"event_id": d.EventID, "triggered_at": sqlstore.FormatTime(d.TriggeredAt), "api_version": d.APIVersion,
		"headers": string(headers), "payload": string(d.Payload), "ts": ts, "receive_ms": receiveMs,
	})
	if err != nil {
		return "", false, fmt.Errorf("store delivery %s: %w", d.WebhookID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return id, false, nil
	}
	var existing string
	err = sqlstore.QueryRow(db, `SELECT id FROM webhook_inbox WHERE shop_domain = {:shop} AND webhook_id = {:webhook_id}`,
		dbx.Params{"shop": d.ShopDomain, "webhook_id": d.WebhookID}, &existing)
	if err != nil {
		return "", true, fmt.Errorf("store delivery %s: find the earlier copy: %w", d.WebhookID, err)
	}
	return existing, true, nil
}

const insertDeliverySQL = `INSERT INTO webhook_inbox
		(id, source, topic, shop_domain, webhook_id, event_id, triggered_at, api_version, headers, payload,
		 status, attempts, received_at, receive_ms, next_attempt_at, created, updated)
		VALUES ({:id}, {:source}, {:topic}, {:shop}, {:webhook_id}, {:event_id}, {:triggered_at}, {:api_version},
		 {:headers}, {:payload}, 'pending', 0, {:ts}, {:receive_ms}, {:ts}, {:ts}, {:ts})
		ON CONFLICT (shop_domain, webhook_id) DO NOTHING`
