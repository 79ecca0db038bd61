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

// Outcome is what allocating (or releasing) an order did.
type Outcome struct {
	OrderID string `json:"order_id"`
	// Status is the order's status afterwards.
	Status string `json:"status"`
	// Allocated and Released are the units newly allocated and released; Waiting the
	// units still waiting in the queue.
	Allocated int `json:"allocated"`
	Released  int `json:"released"`
	Waiting   int `json:"waiting"`
}

// allocatable says an order's lines should hold stock.
func allocatable(status string) bool {
	return status == OrderPaid || status == OrderAwaitingStock || status == OrderAllocated
}

// OrderChanged is the ingestion hook: an order that is (still) paid is allocated, one
// that is cancelled, refunded or back to pending gives its allocations back (a new
// order, from "", holds nothing to give back).
func (a *Allocator) OrderChanged(txApp core.App, orderID, from, to string) error {
	var err error
	switch {
	case allocatable(to):
		_, err = a.AllocateOrder(txApp, orderID, opsevents.ActorSystem)
	case from != "":
		_, err = a.ReleaseOrder(txApp, orderID, "order "+to, opsevents.ActorSystem)
	}
	return err
}

// AllocateOrder allocates every line of a paid order whose product is batch-tracked
// from released batches of that product, first expiry first (then produced date, then
// code), skipping batches that would not keep the minimum shelf life at the expected
// delivery date. A line may take from several batches; what cannot be allocated waits
// in allocation_queue. The order becomes awaiting_stock or allocated. It is
// idempotent: a line takes only what it still lacks (and gives back what it holds
// beyond its current quantity). Orders not paid are left as they are.
func (a *Allocator) AllocateOrder(app core.App, orderID, actor string) (Outcome, error) {
	var out Outcome
	err := app.RunInTransaction(func(txApp core.App) error {
		var err error
		out, err = a.allocateOrder(txApp.DB(), orderID, actor, a.now())
		return err
	})
	if err != nil {
		return out, fmt.Errorf("allocate order %s: %w", orderID, err)
	}
	return out, nil
}

type orderRow struct {
	ID     string `db:"id"`
	Number string `db:"order_number"`
	Status string `db:"status"`
}

type lineRow struct {
	ID         string `db:"id"`
	Product    string `db:"product"`
	Quantity   int    `db:"current_quantity"`
	NotTracked bool   `db:"not_batch_tracked"`
	SKU        string `db:"sku"`
	Held       int    `db:"held"`
}

func readOrder(db dbx.Builder, orderID string) (orderRow, error) {
	var o orderRow
	err := db.NewQuery(`SELECT id, order_number, status FROM orders WHERE id = {:id}`).Bind(dbx.Params{"id": orderID}).One(&o)
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("no order %q", orderID)
	}
	return o, err
}

func readLines(db dbx.Builder, orderID string) ([]lineRow, error) {
	var lines []lineRow
	err := db.NewQuery(`SELECT oi.id, oi.product, oi.current_quantity, oi.sku,
		COALESCE(p.not_batch_tracked, 0) AS not_batch_tracked,
		(SELECT COALESCE(SUM(a.quantity), 0) FROM allocations a WHERE a.order_item = oi.id AND a.status IN ('allocated', 'dispatched')) AS held
		FROM order_items oi LEFT JOIN products p ON p.id = oi.product
		WHERE oi."order" = {:id} ORDER BY oi.id`).Bind(dbx.Params{"id": orderID}).All(&lines)
	return lines, err
}

func (a *Allocator) allocateOrder(db dbx.Builder, orderID, actor string, now time.Time) (Outcome, error) {
	o, err := readOrder(db, orderID)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{OrderID: o.ID, Status: o.Status}
	if !allocatable(o.Status) {
		return out, nil
	}
	lines, err := readLines(db, orderID)
	if err != nil {
		return out, fmt.Errorf("read lines: %w", err)
	}
	cutoff := a.expiryCutoff(db, now)
	tracked := 0
	for _, l := range lines {
		// lines of unknown SKUs (flagged by ingestion) and untracked products skip allocation
		if l.Product == "" {
			continue
		}
		waiting := 0
		if !l.NotTracked && l.Quantity > 0 {
			tracked++
		}
		need := l.Quantity - l.Held
		if l.NotTracked {
			need = 0
		}
		if need < 0 {
			n, err := releaseExcess(db, o, l, -need, actor, now)
			if err != nil {
				return out, err
			}
			out.Released += n
		}
		if need > 0 {
			got, err := takeFEFO(db, o, l, need, cutoff, actor, now)
			if err != nil {
				return out, err
			}
			out.Allocated += got
			waiting = need - got
		}
		if err := setWaiting(db, o.ID, l, waiting, now); err != nil {
			return out, err
		}
		out.Waiting += waiting
	}
	status := o.Status
	switch {
	case tracked == 0:
		// nothing to allocate: the order goes on to production or fulfilment as paid
		status = OrderPaid
	case out.Waiting > 0:
		status = OrderAwaitingStock
	default:
		status = OrderAllocated
	}
	out.Status = status
	if status == o.Status && out.Allocated == 0 && out.Released == 0 {
		return out, nil
	}
	return out, recordOrderAllocation(db, o, status, out, actor, now)
}

// recordOrderAllocation sets the order's status and writes its ops event.
func recordOrderAllocation(db dbx.Builder, o orderRow, status string, out Outcome, actor string, now time.Time) error {
	if status != o.Status {
		if err := sqlstore.Update(db, "orders", o.ID, now, dbx.Params{"status": status}); err != nil {
			return err
		}
	}
	kind, msg := "order.allocation_changed", fmt.Sprintf("Order %s: %d units allocated, %d released, %d waiting", o.Number, out.Allocated, out.Released, out.Waiting)
	switch {
	case status != o.Status && status == OrderAllocated:
		kind, msg = "order.allocated", fmt.Sprintf("Order %s is allocated: %d units held from released batches", o.Number, out.Allocated)
	case status != o.Status && status == OrderAwaitingStock:
		kind, msg = "order.awaiting_stock", fmt.Sprintf("Order %s awaits stock: %d units allocated, %d waiting", o.Number, out.Allocated, out.Waiting)
	}
	return opsevents.Record(db, now, opsevents.Event{EntityType: "order", EntityID: o.ID, Kind: kind, Actor: actorOrSystem(actor), Message: msg,
		Meta: map[string]any{"from": o.Status, "to": status, "allocated": out.Allocated, "released": out.Released, "waiting": out.Waiting}})
}

type candidate struct {
	ID        string `db:"id"`
	Code      string `db:"code"`
	OnHand    int    `db:"on_hand"`
	Allocated int    `db:"allocated"`
}

// fefoCandidates are the product's batches with free units that keep the minimum
// shelf life, first expiry first. The WHERE repeats idx_batches_fefo_available's
// condition word for word so SQLite uses that partial index: exhausted batches are
// never read, however many there are.
func fefoCandidates(db dbx.Builder, product, cutoff string, limit int) ([]candidate, error) {
	var cs []candidate
	err := db.NewQuery(fefoQuery).Bind(dbx.Params{"p": product, "cutoff": cutoff, "limit": limit}).All(&cs)
	return cs, err
}

const fefoQuery = `SELECT id, code, on_hand, allocated FROM batches
	WHERE product = {:p} AND status = 'released' AND on_hand > allocated AND expiry_date >= {:cutoff}
	ORDER BY expiry_date, produced_at, code LIMIT {:limit}`

// ExplainFEFO returns SQLite's plan of the FEFO candidate query, one step a line:
// it should search idx_batches_fefo_available and neither scan nor sort.
func ExplainFEFO(db dbx.Builder) (string, error) {
	var rows []struct {
		Detail string `db:"detail"`
	}
	err := db.NewQuery("EXPLAIN QUERY PLAN " + fefoQuery).Bind(dbx.Params{"p": "p", "cutoff": "", "limit": 8}).All(&rows)
	steps := make([]string, len(rows))
	for i, r := range rows {
		steps[i] = r.Detail
	}
	return strings.Join(steps, "\n"), err
}

// takeFEFO allocates up to need units of the line from the FEFO candidates and
// returns how many it got.
func takeFEFO(db dbx.Builder, o orderRow, l lineRow, need int, cutoff, actor string, now time.Time) (int, error) {
	got := 0
	for need > 0 {
		cs, err := fefoCandidates(db, l.Product, cutoff, 8)
		if err != nil {
			return got, fmt.Errorf("find batches of %s: %w", l.SKU, err)
		}
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			q := min(need, c.OnHand-c.Allocated)
			if err := takeFromBatch(db, o, l, c, q, actor, now); err != nil {
				return got, err
			}
			got, need = got+q, need-q
			if need == 0 {
				break
			}
		}
	}
	return got, nil
}

// takeFromBatch allocates q units of batch c to the line. The UPDATE refuses to hold
// more than is on hand, so a unit can never be allocated twice.
func takeFromBatch(db dbx.Builder, o orderRow, l lineRow, c candidate, q int, actor string, now time.Time) error {
	var after int
	err := db.NewQuery(`UPDATE batches SET allocated = allocated + {:q}, updated = {:ts}
		WHERE id = {:id} AND status = 'released' AND allocated + {:q} <= on_hand RETURNING allocated`).
		Bind(dbx.Params{"q": q, "id": c.ID, "ts": sqlstore.FormatTime(now)}).Row(&after)
	if err != nil {
		return fmt.Errorf("hold %d units of batch %s: %w", q, c.Code, err)
	}
	allocID, err := sqlstore.Insert(db, "allocations", now, dbx.Params{
		"batch": c.ID, "order": o.ID, "order_item": l.ID, "quantity": q, "status": AllocationAllocated,
	})
	if err != nil {
		return err
	}
	_, err = insertMovement(db, now, movementRow{batch: c.ID, product: l.Product, typ: MovementAllocation, quantity: q,
		before: after - q, after: after, reference: "allocation:" + allocID, order: o.ID, actor: actor,
		reason: fmt.Sprintf("FEFO allocation to order %s", o.Number)})
	return err
}

// setWaiting keeps the line's pending queue row at waiting units (opening it, or
// closing it as allocated when nothing waits). The row keeps its first created time,
// so the queue's age is how long the line has waited.
func setWaiting(db dbx.Builder, orderID string, l lineRow, waiting int, now time.Time) error {
	ts := sqlstore.FormatTime(now)
	if waiting == 0 {
		_, err := db.NewQuery(`UPDATE allocation_queue SET state = 'allocated', resolved_at = {:ts}, updated = {:ts}
			WHERE order_item = {:item} AND state = 'pending'`).Bind(dbx.Params{"ts": ts, "item": l.ID}).Execute()
		return err
	}
	res, err := db.NewQuery(`UPDATE allocation_queue SET quantity = {:q}, updated = {:ts}
		WHERE order_item = {:item} AND state = 'pending' AND quantity != {:q}`).Bind(dbx.Params{"q": waiting, "ts": ts, "item": l.ID}).Execute()
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	_, err = db.NewQuery(`INSERT INTO allocation_queue (id, "order", order_item, product, quantity, state, resolved_at, created, updated)
		VALUES ({:id}, {:order}, {:item}, {:product}, {:q}, 'pending', '', {:ts}, {:ts})
		ON CONFLICT (order_item) WHERE state = 'pending' DO NOTHING`).
		Bind(dbx.Params{"id": sqlstore.NewID(), "order": orderID, "item": l.ID, "product": l.Product, "q": waiting, "ts": ts}).Execute()
	if err != nil {
		return fmt.Errorf("queue line %s: %w", l.ID, err)
	}
	return nil
}

type heldRow struct {
	ID       string `db:"id"`
	Batch    string `db:"batch"`
	Code     string `db:"code"`
	Product  string `db:"product"`
	Quantity int    `db:"quantity"`
	Order    string `db:"order"`
}

// releaseExcess gives back units a line holds beyond its current quantity (after an
// edit or a refund), latest expiry first: the line keeps the units that must go first.
func releaseExcess(db dbx.Builder, o orderRow, l lineRow, excess int, actor string, now time.Time) (int, error) {
	var held []heldRow
	err := db.NewQuery(`SELECT a.id, a.batch, b.code, b.product, a.quantity, a."order" FROM allocations a JOIN batches b ON b.id = a.batch
		WHERE a.order_item = {:item} AND a.status = 'allocated' ORDER BY b.expiry_date DESC, b.code DESC`).
		Bind(dbx.Params{"item": l.ID}).All(&held)
	if err != nil {
		return 0, err
	}
	released := 0
	for _, h := range held {
		if excess == 0 {
			break
		}
		q := min(excess, h.Quantity)
		if err := releaseUnits(db, h, q, o.ID, fmt.Sprintf("order %s needs %d fewer units", o.Number, excess), actor, now); err != nil {
			return released, err
		}
		released, excess = released+q, excess-q
	}
	return released, nil
}

// releaseUnits returns q units of an active allocation to its batch: the whole
// allocation becomes released, or its quantity shrinks. The batch's allocated is
// recomputed from its allocations, so it is right even if it was not before.
func releaseUnits(db dbx.Builder, h heldRow, q int, orderID, reason, actor string, now time.Time) error {
	ts := sqlstore.FormatTime(now)
	var err error
	if q >= h.Quantity {
		_, err = db.NewQuery(`UPDATE allocations SET status = 'released', updated = {:ts} WHERE id = {:id} AND status = 'allocated'`).
			Bind(dbx.Params{"ts": ts, "id": h.ID}).Execute()
	} else {
		_, err = db.NewQuery(`UPDATE allocations SET quantity = quantity - {:q}, updated = {:ts} WHERE id = {:id} AND status = 'allocated'`).
			Bind(dbx.Params{"q": q, "ts": ts, "id": h.ID}).Execute()
	}
	if err != nil {
		return fmt.Errorf("release allocation %s: %w", h.ID, err)
	}
	var after int
	if err := db.NewQuery(`UPDATE batches SET allocated = (SELECT COALESCE(SUM(quantity), 0) FROM allocations
		WHERE batch = {:b} AND status = 'allocated'), updated = {:ts} WHERE id = {:b} RETURNING allocated`).
		Bind(dbx.Params{"b": h.Batch, "ts": ts}).Row(&after); err != nil {
		return fmt.Errorf("release units of batch %s: %w", h.Code, err)
	}
	_, err = insertMovement(db, now, movementRow{batch: h.Batch, product: h.Product, typ: MovementRelease, quantity: -q,
		before: after + q, after: after, reference: "allocation:" + h.ID, order: orderID, actor: actor, reason: reason})
	return err
}

// ReleaseOrder gives back every undispatched allocation of the order (cancelled or
// refunded before dispatch), closes its queue rows and offers the units to orders
// waiting for them. Releasing an order that holds nothing changes nothing.
func (a *Allocator) ReleaseOrder(app core.App, orderID, reason, actor string) (Outcome, error) {
	var out Outcome
	err := app.RunInTransaction(func(txApp core.App) error {
		var err error
		out, err = a.releaseOrder(txApp.DB(), orderID, reason, actor, a.now())
		return err
	})
	if err != nil {
		return out, fmt.Errorf("release order %s: %w", orderID, err)
	}
	return out, nil
}

func (a *Allocator) releaseOrder(db dbx.Builder, orderID, reason, actor string, now time.Time) (Outcome, error) {
	o, err := readOrder(db, orderID)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{OrderID: o.ID, Status: o.Status}
	var held []heldRow
	if err := db.NewQuery(`SELECT a.id, a.batch, b.code, b.product, a.quantity, a."order" FROM allocations a JOIN batches b ON b.id = a.batch
		WHERE a."order" = {:o} AND a.status = 'allocated' ORDER BY a.id`).Bind(dbx.Params{"o": orderID}).All(&held); err != nil {
		return out, err
	}
	products := map[string]bool{}
	for _, h := range held {
		if err := releaseUnits(db, h, h.Quantity, o.ID, fmt.Sprintf("order %s: %s", o.Number, reason), actor, now); err != nil {
			return out, err
		}
		out.Released += h.Quantity
		products[h.Product] = true
	}
	res, err := db.NewQuery(`UPDATE allocation_queue SET state = 'cancelled', resolved_at = {:ts}, updated = {:ts}
		WHERE "order" = {:o} AND state = 'pending'`).Bind(dbx.Params{"ts": sqlstore.FormatTime(now), "o": orderID}).Execute()
	if err != nil {
		return out, err
	}
	cancelled, _ := res.RowsAffected()
	if out.Released == 0 && cancelled == 0 {
		return out, nil
	}
	if err := opsevents.Record(db, now, opsevents.Event{EntityType: "order", EntityID: o.ID, Kind: "order.allocation_released", Actor: actorOrSystem(actor),
		Message: fmt.Sprintf("Order %s (%s): %d allocated units returned to their batches", o.Number, reason, out.Released),
		Meta:    map[string]any{"released": out.Released, "queue_rows_cancelled": cancelled}}); err != nil {
		return out, err
	}
	for p := range products {
		if err := a.allocateWaiting(db, p, actor, now); err != nil {
			return out, err
		}
	}
	return out, nil
}

// allocateWaiting offers the product's free stock to the orders waiting for it,
// oldest wait first, until the stock or the queue runs out.
func (a *Allocator) allocateWaiting(db dbx.Builder, product, actor string, now time.Time) error {
	var orders []struct {
		Order string `db:"order"`
		Since string `db:"since"`
	}
	if err := db.NewQuery(`SELECT q."order", MIN(q.created) AS since FROM allocation_queue q JOIN orders o ON o.id = q."order"
		WHERE q.product = {:p} AND q.state = 'pending' GROUP BY q."order" ORDER BY since, MIN(o.shopify_created_at), q."order"`).
		Bind(dbx.Params{"p": product}).All(&orders); err != nil {
		return fmt.Errorf("read the allocation queue: %w", err)
	}
	cutoff := a.expiryCutoff(db, now)
	for _, w := range orders {
		cs, err := fefoCandidates(db, product, cutoff, 1)
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			return nil
		}
		if _, err := a.allocateOrder(db, w.Order, actor, now); err != nil {
			return fmt.Errorf("allocate waiting order %s: %w", w.Order, err)
		}
	}
	return nil
}

// BatchReleased is the OnReleased hook: the batch's stock goes to orders waiting for
// its product, oldest first.
func (a *Allocator) BatchReleased(txApp core.App, batchID string) error {
	db := txApp.DB()
	b, err := readBatch(db, batchID)
	if err != nil {
		return err
	}
	return a.allocateWaiting(db, b.Product, opsevents.ActorSystem, a.now())
}

// BatchRecalled is the OnRecalled hook: units of the batch held for orders that have
// not left (orders allocated or awaiting stock) are released and those orders
// allocated again from other batches, oldest order first. Dispatched units stay on
// record for the forward trace.
func (a *Allocator) BatchRecalled(txApp core.App, batchID string) error {
	db, now := txApp.DB(), a.now()
	b, err := readBatch(db, batchID)
	if err != nil {
		return err
	}
	var held []heldRow
	if err := db.NewQuery(`SELECT a.id, a.batch, b.code, b.product, a.quantity, a."order" FROM allocations a
		JOIN batches b ON b.id = a.batch JOIN orders o ON o.id = a."order"
		WHERE a.batch = {:b} AND a.status = 'allocated' AND o.status IN ('allocated', 'awaiting_stock')
		ORDER BY o.shopify_created_at, o.id`).Bind(dbx.Params{"b": batchID}).All(&held); err != nil {
		return err
	}
	var orders []string
	seen := map[string]bool{}
	for _, h := range held {
		if err := releaseUnits(db, h, h.Quantity, h.Order, fmt.Sprintf("batch %s recalled", b.Code), opsevents.ActorSystem, now); err != nil {
			return err
		}
		if !seen[h.Order] {
			seen[h.Order] = true
			orders = append(orders, h.Order)
		}
	}
	for _, id := range orders {
		if _, err := a.allocateOrder(db, id, opsevents.ActorSystem, now); err != nil {
			return fmt.Errorf("re-allocate order %s after the recall of %s: %w", id, b.Code, err)
		}
	}
	return nil
}
