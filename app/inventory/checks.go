package inventory

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/app/settings"
	"github.com/opspine/opspine/app/sqlstore"
)

// Thresholds of the inventory checks, tunable in `config`.
var (
	coverWarnDays = settings.Register(settings.Setting{Key: "stock_cover_warning_days", Default: 14, Unit: "days",
		Description: "Low stock: warn when a product's available units cover fewer days than this at the last 28 days' rate of allocation. Default 14."})
	coverCritDays = settings.Register(settings.Setting{Key: "stock_cover_critical_days", Default: 5, Unit: "days",
		Description: "Low stock: critical below this many days of cover. Default 5."})
	expiryWarnDays = settings.Register(settings.Setting{Key: "stock_expiry_warning_days", Default: 14, Unit: "days",
		Description: "Warn about released batches with unallocated units that expire within this many days. Default 14."})
	queueWarnHours = settings.Register(settings.Setting{Key: "allocation_queue_warning_hours", Default: 24, Unit: "hours",
		Description: "Warn when an order line has waited this long for stock. Default 24."})
	queueCritHours = settings.Register(settings.Setting{Key: "allocation_queue_critical_hours", Default: 72, Unit: "hours",
		Description: "Critical when an order line has waited this long for stock. Default 72."})
)

// coverWindow is the demand window of the low stock check (SOP-INV-01: last 28 days).
const coverWindow = 28 * 24 * time.Hour

func init() {
	monitor.Register(monitor.Check{Name: "stock-cover", Schedule: "*/15 * * * *", Run: checkStockCover})
	monitor.Register(monitor.Check{Name: "stock-expiring", Schedule: "5 * * * *", Run: checkStockExpiring})
	monitor.Register(monitor.Check{Name: "allocation-queue-age", Schedule: "*/15 * * * *", Run: checkQueueAge})
	monitor.Register(monitor.Check{Name: "inventory-ledger", Schedule: "35 * * * *", Run: checkLedger})
}

// ProductCover is a product's available units and how many days they last.
type ProductCover struct {
	SKU       string  `db:"sku" json:"sku"`
	Available int     `db:"available" json:"available"`
	Allocated int     `db:"allocated_28d" json:"allocated_28d"`
	Days      float64 `json:"days_of_cover"`
}

// FindProductCover returns every active batch-tracked product with demand in the last
// 28 days (net allocations: allocated minus released) and its days of cover.
func FindProductCover(db dbx.Builder, now time.Time) ([]ProductCover, error) {
	var out []ProductCover
	err := db.NewQuery(`SELECT * FROM (SELECT p.sku,
		 (SELECT COALESCE(SUM(b.on_hand - b.allocated), 0) FROM batches b
		  WHERE b.product = p.id AND b.status = 'released' AND b.on_hand > b.allocated AND b.expiry_date >= {:now}) AS available,
		 (SELECT COALESCE(SUM(m.quantity), 0) FROM inventory_movements m
		  WHERE m.product = p.id AND m.type IN ('allocation', 'release') AND m.created >= {:since}) AS allocated_28d
		FROM products p WHERE p.active AND NOT p.not_batch_tracked) WHERE allocated_28d > 0 ORDER BY sku`).
		Bind(dbx.Params{"now": sqlstore.FormatTime(now), "since": sqlstore.FormatTime(now.Add(-coverWindow))}).All(&out)
	for i := range out {
		perDay := float64(out[i].Allocated) / 28
		out[i].Days = math.Round(float64(out[i].Available)/perDay*10) / 10
	}
	return out, err
}

func checkStockCover(_ context.Context, env monitor.Env) (monitor.Result, error) {
	covers, err := FindProductCover(env.DB, env.Now)
	if err != nil {
		return monitor.Result{}, err
	}
	warn, crit := coverWarnDays.Value(env.DB), coverCritDays.Value(env.DB)
	status := monitor.StatusOK
	var low []string
	var fields []alerts.Field
	for _, c := range covers {
		s := monitor.StatusOK
		switch {
		case c.Days < crit:
			s = monitor.StatusCritical
		case c.Days < warn:
			s = monitor.StatusWarning
		}
		if s != monitor.StatusOK {
			status = monitor.Worse(status, s)
			low = append(low, fmt.Sprintf("%s %.1f days", c.SKU, c.Days))
			fields = append(fields, alerts.Field{Label: c.SKU, Value: fmt.Sprintf("%d available, %.1f days of cover", c.Available, c.Days)})
		}
	}
	summary := fmt.Sprintf("%d products with demand, all with at least %.0f days of cover", len(covers), warn)
	if len(low) > 0 {
		summary = fmt.Sprintf("%d products low on stock: %s", len(low), strings.Join(low, ", "))
	}
	return monitor.Result{Status: status, Title: "Products are running low on stock", Summary: summary, Fields: fields,
		Figures: map[string]any{"products": len(covers), "low": len(low)}}, nil
}

func checkStockExpiring(_ context.Context, env monitor.Env) (monitor.Result, error) {
	horizon := env.Now.Add(time.Duration(expiryWarnDays.Value(env.DB) * float64(24*time.Hour)))
	var rows []struct {
		Code   string `db:"code"`
		SKU    string `db:"sku"`
		Expiry string `db:"expiry_date"`
		Free   int    `db:"free"`
	}
	err := env.DB.NewQuery(`SELECT b.code, p.sku, b.expiry_date, b.on_hand - b.allocated AS free FROM batches b
		JOIN products p ON p.id = b.product
		WHERE b.status = 'released' AND b.on_hand > b.allocated AND b.expiry_date != '' AND b.expiry_date < {:horizon}
		ORDER BY b.expiry_date LIMIT 50`).Bind(dbx.Params{"horizon": sqlstore.FormatTime(horizon)}).All(&rows)
	if err != nil {
		return monitor.Result{}, err
	}
	status, expired, units := monitor.StatusOK, 0, 0
	var fields []alerts.Field
	for _, r := range rows {
		t, _ := sqlstore.ParseTime(r.Expiry)
		units += r.Free
		s := monitor.StatusWarning
		if t.Before(env.Now) {
			s, expired = monitor.StatusCritical, expired+1
		}
		status = monitor.Worse(status, s)
		fields = append(fields, alerts.Field{Label: r.Code, Value: fmt.Sprintf("%s: %d units free, use by %s", r.SKU, r.Free, t.Format("2 Jan"))})
	}
	return monitor.Result{Status: status, Title: "Stock is close to its use-by date",
		Summary: fmt.Sprintf("%d batches with %d unallocated units expire within %.0f days (%d already expired)", len(rows), units, expiryWarnDays.Value(env.DB), expired),
		Fields:  fields, Figures: map[string]any{"batches": len(rows), "units": units, "expired": expired}}, nil
}

func checkQueueAge(_ context.Context, env monitor.Env) (monitor.Result, error) {
	var q struct {
		Lines  int    `db:"lines"`
		Units  int    `db:"units"`
		Oldest string `db:"oldest"`
	}
	if err := env.DB.NewQuery(`SELECT COUNT(*) AS lines, COALESCE(SUM(quantity), 0) AS units, COALESCE(MIN(created), '') AS oldest
		FROM allocation_queue WHERE state = 'pending'`).One(&q); err != nil {
		return monitor.Result{}, err
	}
	hours := 0.0
	if q.Oldest != "" {
		t, err := sqlstore.ParseTime(q.Oldest)
		if err != nil {
			return monitor.Result{}, err
		}
		hours = math.Max(0, env.Now.Sub(t).Hours())
	}
	status := monitor.StatusOK
	switch {
	case q.Lines > 0 && hours >= queueCritHours.Value(env.DB):
		status = monitor.StatusCritical
	case q.Lines > 0 && hours >= queueWarnHours.Value(env.DB):
		status = monitor.StatusWarning
	}
	hours = math.Round(hours*10) / 10
	return monitor.Result{Status: status, Title: "Orders have waited long for stock",
		Summary: fmt.Sprintf("%d order lines wait for %d units, the oldest for %.1f h", q.Lines, q.Units, hours),
		Fields:  []alerts.Field{{Label: "Lines waiting", Value: fmt.Sprint(q.Lines)}, {Label: "Oldest", Value: fmt.Sprintf("%.1f h", hours)}},
		Figures: map[string]any{"lines": q.Lines, "units": q.Units, "oldest_hours": hours}}, nil
}

func checkLedger(_ context.Context, env monitor.Env) (monitor.Result, error) {
	bad, err := VerifyLedger(env.DB)
	if err != nil {
		return monitor.Result{}, err
	}
	if len(bad) == 0 {
		return monitor.Result{Status: monitor.StatusOK, Summary: "every batch's on hand is the sum of its movements and its allocated the sum of its allocations",
			Figures: map[string]any{"mismatches": 0}}, nil
	}
	var fields []alerts.Field
	for i, b := range bad {
		if i == 10 {
			break
		}
		fields = append(fields, alerts.Field{Label: b.Code, Value: fmt.Sprintf("on hand %d (movements %d), allocated %d (allocations %d)",
			b.OnHand, b.MovementSum, b.Allocated, b.AllocationSum)})
	}
	return monitor.Result{Status: monitor.StatusCritical, Title: "Stock records disagree with their movements",
		Summary: fmt.Sprintf("%d batches whose cached stock differs from the movements or allocations", len(bad)),
		Fields:  fields, Figures: map[string]any{"mismatches": len(bad)}}, nil
}
