package inventory

import (
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/sqlstore"
)

// DispatchOrder records that the order's allocated units left the store: each active
// allocation becomes dispatched and its units leave on_hand and allocated of their
// batch together (a dispatch movement), so available does not change. The dispatch
// flow of a later issue calls it; dispatching twice changes nothing the second time.
// It returns the units dispatched.
func (a *Allocator) DispatchOrder(app core.App, orderID, actor string) (int, error) {
	units := 0
	err := app.RunInTransaction(func(txApp core.App) error {
		db, now := txApp.DB(), a.now()
		o, err := readOrder(db, orderID)
		if err != nil {
			return err
		}
		var held []heldRow
		if err := db.NewQuery(`SELECT a.id, a.batch, b.code, b.product, a.quantity, a."order" FROM allocations a JOIN batches b ON b.id = a.batch
			WHERE a."order" = {:o} AND a.status = 'allocated' ORDER BY a.id`).Bind(dbx.Params{"o": orderID}).All(&held); err != nil {
			return err
		}
		ts := sqlstore.FormatTime(now)
		for _, h := range held {
			if _, err := db.NewQuery(`UPDATE allocations SET status = 'dispatched', updated = {:ts} WHERE id = {:id}`).
				Bind(dbx.Params{"ts": ts, "id": h.ID}).Execute(); err != nil {
				return err
			}
			var after int
			if err := db.NewQuery(`UPDATE batches SET on_hand = on_hand - {:q}, allocated = allocated - {:q}, updated = {:ts}
				WHERE id = {:b} AND allocated >= {:q} RETURNING on_hand`).Bind(dbx.Params{"q": h.Quantity, "ts": ts, "b": h.Batch}).Row(&after); err != nil {
				return fmt.Errorf("dispatch %d units of batch %s: %w", h.Quantity, h.Code, err)
			}
			if _, err := insertMovement(db, now, movementRow{batch: h.Batch, product: h.Product, typ: MovementDispatch, quantity: -h.Quantity,
				before: after + h.Quantity, after: after, reference: "allocation:" + h.ID, order: o.ID, actor: actor,
				reason: fmt.Sprintf("dispatched with order %s", o.Number)}); err != nil {
				return err
			}
			units += h.Quantity
		}
		if units == 0 {
			return nil
		}
		return opsevents.Record(db, now, opsevents.Event{EntityType: "order", EntityID: o.ID, Kind: "order.stock_dispatched", Actor: actorOrSystem(actor),
			Message: fmt.Sprintf("Order %s: %d allocated units left the store", o.Number, units), Meta: map[string]any{"units": units}})
	})
	if err != nil {
		return 0, fmt.Errorf("dispatch order %s: %w", orderID, err)
	}
	return units, nil
}
