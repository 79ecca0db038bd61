package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/shopify"
	"github.com/opspine/opspine/app/sqlstore"
)

// applied is what a topic handler did.
type applied struct {
	Status     string // StatusProcessed or StatusSkipped
	Message    string
	ResourceID string
	Events     []opsevents.Event
	// RedactPayload erases personal data from this delivery's own payload once it is
	// applied (a compliance request, or a late delivery about someone already erased).
	RedactPayload bool
	noop          bool
}

// applyContext is one delivery being applied inside its transaction.
type applyContext struct {
	tx    core.App
	db    dbx.Builder // tx's builder, with prepared statements
	batch *batch
	now   time.Time
	row   inboxRow
	proc  *Processor
	shop  Shop
}

// topicHandlers maps each Shopify topic opspine handles to its handler.
var topicHandlers = map[string]func(*applyContext, []byte) (applied, error){
	"orders/create":              applyOrder,
	"orders/updated":             applyOrder,
	"orders/paid":                applyOrder,
	"orders/cancelled":           applyOrder,
	"orders/fulfilled":           applyOrder,
	"orders/partially_fulfilled": applyOrder,
	"refunds/create":             applyRefund,
	"customers/create":           applyCustomer,
	"customers/update":           applyCustomer,
	"app/uninstalled":            applyAppUninstalled,
	"customers/data_request":     applyDataRequest,
	"customers/redact":           applyCustomerRedact,
	"shop/redact":                applyShopRedact,
}

// HandledTopics lists the topics opspine processes; others are stored and skipped.
func HandledTopics() []string {
	out := make([]string, 0, len(topicHandlers))
	for t := range topicHandlers {
		out = append(out, t)
	}
	return out
}

func (c *applyContext) apply() (applied, error) {
	if c.row.Topic == "(missing)" {
		return applied{}, permanent("delivery has no X-Shopify-Topic header")
	}
	shop, err := c.batch.shop(c.row.ShopDomain)
	if errors.Is(err, ErrUnknownShop) {
		return applied{}, permanent("shop %s is no longer in shops", c.row.ShopDomain)
	}
	if err != nil {
		return applied{}, err
	}
	c.shop = shop
	handler, ok := topicHandlers[c.row.Topic]
	if !ok {
		return applied{Status: StatusSkipped, Message: "topic " + c.row.Topic + " is not used by opspine"}, nil
	}
	return handler(c, []byte(c.row.Payload))
}

// finish marks the inbox row with the outcome and writes the delivery's ops events.
func (c *applyContext) finish(done applied, started time.Time) error {
	params := dbx.Params{
		"status":        done.Status,
		"attempts":      c.row.Attempts + 1,
		"last_error":    "",
		"processed_at":  sqlstore.FormatTime(c.now),
		"processing_ms": c.proc.now().Sub(started).Milliseconds(),
		"resource_id":   done.ResourceID,
	}
	if done.RedactPayload {
		params["payload"] = string(shopify.RedactPayload([]byte(c.row.Payload)))
	}
	if err := sqlstore.Update(c.db, "webhook_inbox", c.row.ID, c.now, params); err != nil {
		return err
	}
	for _, e := range done.Events {
		if e.Actor == "" {
			e.Actor = opsevents.ActorShopify
		}
		if e.Meta == nil {
			e.Meta = map[string]any{}
		}
		e.Meta["delivery"] = c.row.ID
		if err := opsevents.Record(c.db, c.now, e); err != nil {
			return err
		}
	}
	return nil
}

// orderChanged runs the order hooks inside the delivery's transaction.
func (c *applyContext) orderChanged(ch OrderChange) error {
	for _, h := range c.proc.orderHooks {
		if err := h(c.tx, ch); err != nil {
			return fmt.Errorf("order %s %s→%s: %w", ch.ShopifyOrderID, ch.From, ch.To, err)
		}
	}
	return nil
}
