package batches

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/sqlstore"
)

// TraceRow is one allocation of a batch to an order line: who received (or is held to
// receive) units of it.
type TraceRow struct {
	BatchCode        string    `json:"batch_code"`
	OrderID          string    `json:"order_id"`
	OrderNumber      string    `json:"order_number"`
	OrderDate        time.Time `json:"order_date"`
	CustomerID       string    `json:"customer_id"`
	CustomerName     string    `json:"customer_name"`
	CustomerEmail    string    `json:"customer_email"`
	SKU              string    `json:"sku"`
	Quantity         int       `json:"quantity"`
	AllocationStatus string    `json:"allocation_status"`
}

// RecallResult is a recall's status change and the batch's forward trace.
type RecallResult struct {
	Change
	AlreadyRecalled bool       `json:"already_recalled"`
	Orders          int        `json:"orders"`
	Customers       int        `json:"customers"`
	Units           int        `json:"units"`
	Trace           []TraceRow `json:"trace"`
	AlertID         string     `json:"alert_id,omitempty"`
}

// RecallBatch marks a batch recalled (through Transition: history, ops event, the
// OnRecalled hooks), raises a critical alert naming how many orders and customers
// are affected, and returns the forward trace, all in one transaction (the caller's,
// when app is a transaction's app). Recalling a recalled batch changes nothing and
// returns the trace again.
func RecallBatch(app core.App, batchID, reason, actor string, now time.Time) (RecallResult, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return RecallResult{}, refuse("reason", "reason is required: say why the batch is recalled.")
	}
	if len(reason) > 5000 {
		return RecallResult{}, refuse("reason", "reason is longer than 5000 characters.")
	}
	var res RecallResult
	err := app.RunInTransaction(func(txApp core.App) error {
		ch, err := Transition(txApp, batchID, StatusRecalled, actor, "Recall: "+reason, "", now)
		if err != nil {
			return err
		}
		res.Change, res.AlreadyRecalled = ch, !ch.Changed
		if res.Trace, err = ForwardTrace(txApp.DB(), batchID); err != nil {
			return err
		}
		res.countAffected()
		if !ch.Changed {
			return nil
		}
		res.AlertID, _, err = alerts.Raise(txApp.DB(), now, alerts.Alert{
			Severity: alerts.Critical, Title: fmt.Sprintf("Batch %s recalled", ch.Code),
			Body: fmt.Sprintf("%s Units went to %d orders of %d customers; GET /api/ops/batches/%s/trace.csv lists them.",
				clipRunes("Recall: "+reason, 500), res.Orders, res.Customers, batchID),
			SourceCheck: "batch-recall", DedupeKey: "batch-recalled:" + batchID,
			Fields: []alerts.Field{
				{Label: "Batch", Value: ch.Code}, {Label: "Was", Value: ch.From},
				{Label: "Orders", Value: strconv.Itoa(res.Orders)}, {Label: "Units", Value: strconv.Itoa(res.Units)},
			},
		})
		if err != nil {
			return fmt.Errorf("recall batch %s: %w", ch.Code, err)
		}
		return nil
	})
	return res, err
}

func (r *RecallResult) countAffected() {
	orders, customers := map[string]bool{}, map[string]bool{}
	for _, t := range r.Trace {
		if t.AllocationStatus == "released" {
			continue // returned to the batch: nobody holds these units
		}
		orders[t.OrderID] = true
		who := t.CustomerID
		if who == "" {
			who = "email:" + strings.ToLower(t.CustomerEmail)
		}
		customers[who] = true
		r.Units += t.Quantity
	}
	r.Orders, r.Customers = len(orders), len(customers)
}

// ForwardTrace lists every allocation of the batch with its order, customer and line,
// oldest order first. Left joins keep an allocation whose order or customer is gone.
func ForwardTrace(db dbx.Builder, batchID string) ([]TraceRow, error) {
	var raw []struct {
		BatchCode     string `db:"batch_code"`
		OrderID       string `db:"order_id"`
		OrderNumber   string `db:"order_number"`
		OrderDate     string `db:"order_date"`
		CustomerID    string `db:"customer_id"`
		CustomerName  string `db:"customer_name"`
		CustomerEmail string `db:"customer_email"`
		SKU           string `db:"sku"`
		Quantity      int    `db:"quantity"`
		Status        string `db:"status"`
	}
	err := db.NewQuery(`
		SELECT b.code AS batch_code, a."order" AS order_id, COALESCE(o.order_number, '') AS order_number,
			COALESCE(NULLIF(o.shopify_created_at, ''), o.created, '') AS order_date,
			COALESCE(c.id, '') AS customer_id,
			TRIM(COALESCE(c.first_name, '') || ' ' || COALESCE(c.last_name, '')) AS customer_name,
			COALESCE(NULLIF(c.email, ''), o.email, '') AS customer_email,
			COALESCE(NULLIF(oi.sku, ''), p.sku, '') AS sku,
			a.quantity AS quantity, a.status AS status
		FROM allocations a
		JOIN batches b ON b.id = a.batch
		LEFT JOIN products p ON p.id = b.product
		LEFT JOIN orders o ON o.id = a."order"
		LEFT JOIN order_items oi ON oi.id = a.order_item
		LEFT JOIN customers c ON c.id = o.customer
		WHERE a.batch = {:batch}
		ORDER BY order_date, order_number, sku, a.id`).Bind(dbx.Params{"batch": batchID}).All(&raw)
	if err != nil {
		return nil, fmt.Errorf("forward trace of batch %s: %w", batchID, err)
	}
	rows := make([]TraceRow, 0, len(raw))
	for _, r := range raw {
		date, err := sqlstore.ParseTime(r.OrderDate)
		if err != nil {
			return nil, fmt.Errorf("forward trace of batch %s: order %s: %w", batchID, r.OrderNumber, err)
		}
		rows = append(rows, TraceRow{
			BatchCode: r.BatchCode, OrderID: r.OrderID, OrderNumber: r.OrderNumber, OrderDate: date,
			CustomerID: r.CustomerID, CustomerName: r.CustomerName, CustomerEmail: r.CustomerEmail,
			SKU: r.SKU, Quantity: r.Quantity, AllocationStatus: r.Status,
		})
	}
	return rows, nil
}

// TraceCSVHeader is the first line of a trace CSV.
var TraceCSVHeader = []string{"Batch code", "Order number", "Order date", "Customer name", "Customer email", "SKU", "Quantity", "Allocation status"}

// WriteTraceCSV writes rows as CSV with a header, order dates in loc. Cells that a
// spreadsheet would run as a formula are prefixed with a quote.
func WriteTraceCSV(w io.Writer, rows []TraceRow, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(TraceCSVHeader); err != nil {
		return err
	}
	for _, r := range rows {
		date := ""
		if !r.OrderDate.IsZero() {
			date = r.OrderDate.In(loc).Format("2006-01-02")
		}
		cells := []string{r.BatchCode, r.OrderNumber, date, r.CustomerName, r.CustomerEmail, r.SKU, strconv.Itoa(r.Quantity), r.AllocationStatus}
		for i := range cells {
			cells[i] = SafeCSVCell(cells[i])
		}
		if err := cw.Write(cells); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// SafeCSVCell defuses CSV injection: a cell starting with = + - @ (or a tab or carriage
// return, which some spreadsheets skip) gets a leading quote so it is read as text.
func SafeCSVCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
