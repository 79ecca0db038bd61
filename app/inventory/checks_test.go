package inventory_test

import (
	"context"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/monitor"
)

func runInventoryCheck(t *testing.T, f *fixture, name string, now time.Time) monitor.Result {
	t.Helper()
	for _, c := range monitor.Checks() {
		if c.Name == name {
			res, err := c.Run(context.Background(), monitor.Env{DB: f.app.DB(), Now: now})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return res
		}
	}
	t.Fatalf("no check %s", name)
	return monitor.Result{}
}

// Low stock is days of cover at the last 28 days' rate; stock near its use-by day and
// orders waiting long raise their checks; the ledger check proves the caches.
func TestInventoryChecks(t *testing.T) {
	f := newFixture(t)
	beef := f.product("PR-BEEF-2KG", false)
	wings := f.product("PR-WINGS-1KG", false)
	b := f.batch(beef, "B-1", "released", "2026-12-31", "2026-11-01", 40)
	f.batch(wings, "W-1", "released", "2026-11-30", "2026-10-01", 10) // within 14 days
	f.paid(line{beef, 28})                                            // 1 a day over 28 days: 12 left = 12 days
	f.paid(line{f.product("PR-LAMB-2KG", false), 2})                  // no stock: waits

	if res := runInventoryCheck(t, f, "stock-cover", t0); res.Status != monitor.StatusWarning || res.Figures["low"] != 1 {
		t.Errorf("stock-cover: %+v", res)
	}
	if res := runInventoryCheck(t, f, "stock-expiring", t0); res.Status != monitor.StatusWarning || res.Figures["units"] != 10 {
		t.Errorf("stock-expiring: %+v", res)
	}
	if res := runInventoryCheck(t, f, "stock-expiring", day("2026-12-01")); res.Status != monitor.StatusCritical {
		t.Errorf("stock-expiring after the use-by day: %+v", res)
	}
	if res := runInventoryCheck(t, f, "allocation-queue-age", t0.Add(time.Hour)); res.Status != monitor.StatusOK || res.Figures["lines"] != 1 {
		t.Errorf("queue age after an hour: %+v", res)
	}
	if res := runInventoryCheck(t, f, "allocation-queue-age", t0.Add(80*time.Hour)); res.Status != monitor.StatusCritical {
		t.Errorf("queue age after 80 h: %+v", res)
	}
	if res := runInventoryCheck(t, f, "inventory-ledger", t0); res.Status != monitor.StatusOK {
		t.Errorf("ledger: %+v", res)
	}
	// a cache written behind the movements' back is caught
	f.app.DB().NewQuery(`UPDATE batches SET on_hand = on_hand + 1 WHERE id = {:b}`).Bind(dbx.Params{"b": b}).Execute()
	if res := runInventoryCheck(t, f, "inventory-ledger", t0); res.Status != monitor.StatusCritical || res.Figures["mismatches"] != 1 {
		t.Errorf("ledger after a hand edit: %+v", res)
	}
}
