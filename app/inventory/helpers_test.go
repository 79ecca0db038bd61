package inventory_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/inventory"
	"github.com/opspine/opspine/app/sqlstore"
	"github.com/opspine/opspine/app/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// t0 is a winter morning: London is on GMT, so business days are UTC days. With the
// default settings (delivery in 2 days, 7 days' shelf life left) the first use-by day
// that may be allocated is 29 Nov.
var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func day(s string) time.Time {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return d
}

type fixture struct {
	t     *testing.T
	app   core.App
	alloc *inventory.Allocator
	seq   int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, app: testkit.NewApp(t), alloc: &inventory.Allocator{Now: func() time.Time { return t0 }, Timezone: london}}
	// the batch hooks as the spine binds them, for this app only
	mine := func(tx core.App) bool { return tx.DataDir() == f.app.DataDir() }
	t.Cleanup(batches.OnReleased(func(tx core.App, id string) error {
		if !mine(tx) {
			return nil
		}
		return f.alloc.BatchReleased(tx, id)
	}))
	t.Cleanup(batches.OnRecalled(func(tx core.App, id string) error {
		if !mine(tx) {
			return nil
		}
		return f.alloc.BatchRecalled(tx, id)
	}))
	return f
}

func (f *fixture) product(sku string, notTracked bool) string {
	f.t.Helper()
	id, err := sqlstore.Insert(f.app.DB(), "products", t0, dbx.Params{"sku": sku, "name": sku, "active": true, "not_batch_tracked": notTracked})
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// batch makes a batch of units with the use-by day expiry (stored at midday, as
// batches.Create does) and puts its units on hand with a production movement.
func (f *fixture) batch(product, code, status, expiry, produced string, units int) string {
	f.t.Helper()
	id, err := sqlstore.Insert(f.app.DB(), "batches", t0, dbx.Params{
		"code": code, "public_id": "pub-" + code, "product": product, "status": status, "quantity_units": units,
		"produced_at": sqlstore.FormatTime(day(produced).Add(12 * time.Hour)), "expiry_date": sqlstore.FormatTime(day(expiry).Add(12 * time.Hour)),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := inventory.RecordProduction(f.app, id, units, t0); err != nil {
		f.t.Fatal(err)
	}
	return id
}

type line struct {
	product string
	qty     int
}

// order saves a paid order with lines; created orders the queue (older first).
func (f *fixture) order(status string, lines ...line) string {
	f.t.Helper()
	f.seq++
	created := t0.Add(time.Duration(f.seq) * time.Minute)
	id, err := sqlstore.Insert(f.app.DB(), "orders", created, dbx.Params{"order_number": fmt.Sprintf("PR-%04d", f.seq),
		"shopify_order_id": fmt.Sprint(f.seq), "status": status, "currency": "GBP", "shopify_created_at": sqlstore.FormatTime(created)})
	if err != nil {
		f.t.Fatal(err)
	}
	for i, l := range lines {
		if _, err := sqlstore.Insert(f.app.DB(), "order_items", created, dbx.Params{"order": id, "product": l.product,
			"shopify_line_item_id": fmt.Sprintf("%s-%d", id, i), "quantity": l.qty, "current_quantity": l.qty}); err != nil {
			f.t.Fatal(err)
		}
	}
	return id
}

// paid saves a paid order and allocates it, as the ingestion hook does.
func (f *fixture) paid(lines ...line) (string, inventory.Outcome) {
	f.t.Helper()
	id := f.order("paid", lines...)
	out, err := f.alloc.AllocateOrder(f.app, id, "test")
	if err != nil {
		f.t.Fatal(err)
	}
	return id, out
}

// held maps batch code → units the order holds (status allocated).
func (f *fixture) held(orderID string) map[string]int {
	f.t.Helper()
	var rows []struct {
		Code string `db:"code"`
		Q    int    `db:"q"`
	}
	if err := f.app.DB().NewQuery(`SELECT b.code, SUM(a.quantity) AS q FROM allocations a JOIN batches b ON b.id = a.batch
		WHERE a."order" = {:o} AND a.status = 'allocated' GROUP BY b.code`).Bind(dbx.Params{"o": orderID}).All(&rows); err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Code] = r.Q
	}
	return out
}

func (f *fixture) status(orderID string) string {
	f.t.Helper()
	var s string
	if err := f.app.DB().NewQuery(`SELECT status FROM orders WHERE id = {:id}`).Bind(dbx.Params{"id": orderID}).Row(&s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) waiting(orderID string) int {
	f.t.Helper()
	var n int
	if err := f.app.DB().NewQuery(`SELECT COALESCE(SUM(quantity), 0) FROM allocation_queue WHERE "order" = {:o} AND state = 'pending'`).
		Bind(dbx.Params{"o": orderID}).Row(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) stock(batchID string) (onHand, allocated int) {
	f.t.Helper()
	var r struct {
		OnHand    int `db:"on_hand"`
		Allocated int `db:"allocated"`
	}
	if err := f.app.DB().NewQuery(`SELECT on_hand, allocated FROM batches WHERE id = {:id}`).Bind(dbx.Params{"id": batchID}).One(&r); err != nil {
		f.t.Fatal(err)
	}
	return r.OnHand, r.Allocated
}

// ledgerIsRight fails the test unless every batch's caches equal their sources.
func (f *fixture) ledgerIsRight() {
	f.t.Helper()
	bad, err := inventory.VerifyLedger(f.app.DB())
	if err != nil {
		f.t.Fatal(err)
	}
	if len(bad) > 0 {
		f.t.Errorf("ledger mismatches: %+v", bad)
	}
}

func eq(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
