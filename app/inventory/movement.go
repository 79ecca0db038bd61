package inventory

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/sqlstore"
)

// Movement is one inventory_movements row as written.
type Movement struct {
	ID        string `json:"id"`
	BatchID   string `json:"batch"`
	BatchCode string `json:"batch_code"`
	Type      string `json:"type"`
	Quantity  int    `json:"quantity"`
	Before    int    `json:"before"`
	After     int    `json:"after"`
	// OnHand, Allocated and Available are the batch's figures after the movement.
	OnHand    int `json:"on_hand"`
	Allocated int `json:"allocated"`
	Available int `json:"available"`
}

type movementRow struct {
	batch, product, typ     string
	quantity, before, after int
	reference, order, actor string
	reason                  string
}

func insertMovement(db dbx.Builder, now time.Time, m movementRow) (string, error) {
	id, err := sqlstore.Insert(db, "inventory_movements", now, dbx.Params{
		"batch": m.batch, "product": m.product, "type": m.typ, "quantity": m.quantity, "before": m.before,
		"after": m.after, "reference": m.reference, "order": m.order, "actor": actorOrSystem(m.actor), "reason": m.reason,
	})
	if err != nil {
		return "", fmt.Errorf("record %s movement of batch %s: %w", m.typ, m.batch, err)
	}
	return id, nil
}

// batchStock is a batch's cached figures.
type batchStock struct {
	ID        string `db:"id"`
	Code      string `db:"code"`
	Product   string `db:"product"`
	Status    string `db:"status"`
	OnHand    int    `db:"on_hand"`
	Allocated int    `db:"allocated"`
	CreatedBy string `db:"created_by"`
}

func readBatch(db dbx.Builder, batchID string) (batchStock, error) {
	var b batchStock
	err := db.NewQuery(`SELECT id, code, product, status, on_hand, allocated, created_by FROM batches WHERE id = {:id}`).
		Bind(dbx.Params{"id": batchID}).One(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("batch %q: %w", batchID, ErrNoSuchBatch)
	}
	if err != nil {
		return b, fmt.Errorf("read batch %s: %w", batchID, err)
	}
	return b, nil
}

// changeOnHand adds q (±) to the batch's on_hand and writes the movement. The UPDATE
// itself refuses to take on_hand below what is allocated (and so below zero).
func changeOnHand(db dbx.Builder, now time.Time, b batchStock, m movementRow) (Movement, error) {
	var after int
	err := db.NewQuery(`UPDATE batches SET on_hand = on_hand + {:q}, updated = {:ts}
		WHERE id = {:id} AND on_hand + {:q} >= allocated RETURNING on_hand`).
		Bind(dbx.Params{"q": m.quantity, "ts": sqlstore.FormatTime(now), "id": b.ID}).Row(&after)
	if errors.Is(err, sql.ErrNoRows) {
		return Movement{}, refuse("quantity", "Batch %s has %d on hand of which %d are allocated to orders: a change of %+d would leave less than is allocated.",
			b.Code, b.OnHand, b.Allocated, m.quantity)
	}
	if err != nil {
		return Movement{}, fmt.Errorf("change on hand of batch %s: %w", b.Code, err)
	}
	m.batch, m.product, m.before, m.after = b.ID, b.Product, after-m.quantity, after
	id, err := insertMovement(db, now, m)
	if err != nil {
		return Movement{}, err
	}
	return Movement{ID: id, BatchID: b.ID, BatchCode: b.Code, Type: m.typ, Quantity: m.quantity, Before: m.before, After: after,
		OnHand: after, Allocated: b.Allocated, Available: after - b.Allocated}, nil
}

// RecordProduction puts a new batch's units on hand (a production movement); batch
// creation calls it in its transaction.
func RecordProduction(txApp core.App, batchID string, units int, now time.Time) error {
	if units <= 0 {
		return nil
	}
	db := txApp.DB()
	b, err := readBatch(db, batchID)
	if err != nil {
		return err
	}
	_, err = changeOnHand(db, now, b, movementRow{typ: MovementProduction, quantity: units, reference: "batch:" + batchID,
		actor: b.CreatedBy, reason: fmt.Sprintf("batch %s produced", b.Code)})
	return err
}

// Adjustment is a manual change of a batch's units on hand.
type Adjustment struct {
	BatchID  string
	Quantity int
	Reason   string
	Actor    string
}

// Adjust changes a batch's units on hand by in.Quantity (±) with an adjustment
// movement and an ops_events row; it refuses to take the batch below what is allocated.
// Units added to a released batch go to orders waiting for its product.
func (a *Allocator) Adjust(app core.App, in Adjustment) (Movement, error) {
	reason := strings.TrimSpace(in.Reason)
	switch {
	case strings.TrimSpace(in.BatchID) == "":
		return Movement{}, refuse("batch", "Give batch: the id or code of the batch to adjust.")
	case in.Quantity == 0:
		return Movement{}, refuse("quantity", "Give quantity: the units to add (positive) or remove (negative); 0 changes nothing.")
	case reason == "":
		return Movement{}, refuse("reason", "Give reason: why the stock changes (damaged, found, sample taken...).")
	case len(reason) > 2000:
		return Movement{}, refuse("reason", "reason is longer than 2000 characters.")
	}
	return a.changeByHand(app, in.BatchID, in.Actor, func(b batchStock) (movementRow, error) {
		return movementRow{typ: MovementAdjustment, quantity: in.Quantity, reason: reason}, nil
	})
}

// StockCount is a counted number of units of a batch.
type StockCount struct {
	BatchID string
	Counted int
	Reason  string
	Actor   string
}

// Count records a stock count: the difference between the counted and the recorded
// units becomes a count_correction movement (0 when they agree, so the count itself
// is on record). A count below what is allocated is refused: release allocations first.
func (a *Allocator) Count(app core.App, in StockCount) (Movement, error) {
	reason := strings.TrimSpace(in.Reason)
	if reason == "" {
		reason = "stock count"
	}
	switch {
	case strings.TrimSpace(in.BatchID) == "":
		return Movement{}, refuse("batch", "Give batch: the id or code of the batch counted.")
	case in.Counted < 0:
		return Movement{}, refuse("counted", "counted must be 0 or more; got %d.", in.Counted)
	case len(reason) > 2000:
		return Movement{}, refuse("reason", "reason is longer than 2000 characters.")
	}
	return a.changeByHand(app, in.BatchID, in.Actor, func(b batchStock) (movementRow, error) {
		if in.Counted < b.Allocated {
			return movementRow{}, refuse("counted", "Batch %s has %d units allocated to orders, more than the %d counted: release or re-allocate those orders first.",
				b.Code, b.Allocated, in.Counted)
		}
		return movementRow{typ: MovementCountCorrection, quantity: in.Counted - b.OnHand,
			reason: fmt.Sprintf("%s: counted %d, recorded %d", reason, in.Counted, b.OnHand)}, nil
	})
}

// changeByHand runs a staff change of on_hand in one transaction: the movement, its
// ops event and, when units were added, allocation of waiting orders.
func (a *Allocator) changeByHand(app core.App, batchRef, actor string, plan func(batchStock) (movementRow, error)) (Movement, error) {
	var out Movement
	err := app.RunInTransaction(func(txApp core.App) error {
		db, now := txApp.DB(), a.now()
		b, err := findBatchByRef(db, batchRef)
		if err != nil {
			return err
		}
		m, err := plan(b)
		if err != nil {
			return err
		}
		m.reference, m.actor = "batch:"+b.ID, actor
		if out, err = changeOnHand(db, now, b, m); err != nil {
			return err
		}
		if err := opsevents.Record(db, now, opsevents.Event{
			EntityType: "batch", EntityID: b.ID, Kind: "inventory." + m.typ, Actor: actorOrSystem(actor),
			Message: fmt.Sprintf("Batch %s: %s of %+d units (%d → %d on hand): %s", b.Code, strings.ReplaceAll(m.typ, "_", " "), m.quantity, out.Before, out.After, clip(m.reason, 300)),
			Meta:    map[string]any{"movement": out.ID, "quantity": m.quantity, "before": out.Before, "after": out.After},
		}); err != nil {
			return err
		}
		if m.quantity > 0 && b.Status == "released" {
			return a.allocateWaiting(db, b.Product, actor, now)
		}
		return nil
	})
	return out, err
}

// findBatchByRef reads a batch by id or by code.
func findBatchByRef(db dbx.Builder, ref string) (batchStock, error) {
	ref = strings.TrimSpace(ref)
	b, err := readBatch(db, ref)
	if !errors.Is(err, ErrNoSuchBatch) {
		return b, err
	}
	var id string
	if err := db.NewQuery(`SELECT id FROM batches WHERE code = {:code}`).Bind(dbx.Params{"code": ref}).Row(&id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return b, fmt.Errorf("batch %q: %w", ref, ErrNoSuchBatch)
		}
		return b, err
	}
	return readBatch(db, id)
}

func actorOrSystem(actor string) string {
	if strings.TrimSpace(actor) == "" {
		return opsevents.ActorSystem
	}
	return actor
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
