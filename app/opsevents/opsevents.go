// Package opsevents writes the audit trail: one ops_events row for every state change
// of an order, batch, shipment or delivery (what, who, when, why).
package opsevents

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/sqlstore"
)

// Actors that are not staff.
const (
	ActorSystem  = "system"
	ActorShopify = "shopify"
)

// Event is one row of ops_events. Message is for people and never holds personal data.
type Event struct {
	EntityType string
	EntityID   string
	Kind       string
	Message    string
	Actor      string
	Meta       map[string]any
}

// Record writes e through db, which is a transaction's builder when the event belongs
// to a state change (so both commit or neither does).
func Record(db dbx.Builder, now time.Time, e Event) error {
	meta := []byte("null")
	if e.Meta != nil {
		var err error
		if meta, err = json.Marshal(e.Meta); err != nil {
			return fmt.Errorf("ops event %s: encode meta: %w", e.Kind, err)
		}
	}
	actor := e.Actor
	if actor == "" {
		actor = ActorSystem
	}
	_, err := sqlstore.Insert(db, "ops_events", now, dbx.Params{
		"entity_type": e.EntityType,
		"entity_id":   e.EntityID,
		"kind":        e.Kind,
		"message":     e.Message,
		"actor":       actor,
		"meta":        string(meta),
	})
	if err != nil {
		return fmt.Errorf("ops event %s: %w", e.Kind, err)
	}
	return nil
}
