// Package customers holds what opspine does for a customer as a data subject: export
// everything held about them (Shopify's customers/data_request).
package customers

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/sqlstore"
)

// ErrNotFound is returned for a customer or data request that does not exist.
var ErrNotFound = errors.New("not found")

// Export is everything opspine holds about one customer.
type Export struct {
	ExportedAt   time.Time        `json:"exported_at"`
	Customer     map[string]any   `json:"customer"`
	Orders       []map[string]any `json:"orders"`
	DataRequests []map[string]any `json:"data_requests"`
}

// ExportCustomerData gathers the customer, their orders with line items and refunds,
// and their data requests, and records who exported them.
func ExportCustomerData(app core.App, customerID, actor string, now time.Time) (Export, error) {
	cust, err := app.FindRecordById("customers", customerID)
	if errors.Is(err, sql.ErrNoRows) {
		return Export{}, ErrNotFound
	}
	if err != nil {
		return Export{}, fmt.Errorf("export customer %s: %w", customerID, err)
	}
	out := Export{ExportedAt: now, Customer: cust.PublicExport(), Orders: []map[string]any{}, DataRequests: []map[string]any{}}
	orders, err := app.FindAllRecords("orders", dbx.HashExp{"customer": customerID})
	if err != nil {
		return Export{}, fmt.Errorf("export customer %s: orders: %w", customerID, err)
	}
	for _, o := range orders {
		order := o.PublicExport()
		for _, child := range []string{"order_items", "refunds"} {
			recs, err := app.FindAllRecords(child, dbx.HashExp{"order": o.Id})
			if err != nil {
				return Export{}, fmt.Errorf("export customer %s: %s: %w", customerID, child, err)
			}
			list := make([]map[string]any, 0, len(recs))
			for _, r := range recs {
				list = append(list, r.PublicExport())
			}
			order[child] = list
		}
		out.Orders = append(out.Orders, order)
	}
	requests, err := app.FindAllRecords("data_requests", dbx.HashExp{"customer": customerID})
	if err != nil {
		return Export{}, fmt.Errorf("export customer %s: data requests: %w", customerID, err)
	}
	for _, r := range requests {
		out.DataRequests = append(out.DataRequests, r.PublicExport())
	}
	err = opsevents.Record(app.DB(), now, opsevents.Event{EntityType: "customer", EntityID: customerID,
		Kind: "customer.data_exported", Actor: actor,
		Message: fmt.Sprintf("Personal data of customer %s exported (%d orders)", customerID, len(out.Orders))})
	return out, err
}

// ExportDataRequest exports the data a customers/data_request asked for and marks the
// request exported.
func ExportDataRequest(app core.App, requestID, actor string, now time.Time) (Export, error) {
	req, err := app.FindRecordById("data_requests", requestID)
	if errors.Is(err, sql.ErrNoRows) {
		return Export{}, ErrNotFound
	}
	if err != nil {
		return Export{}, fmt.Errorf("export data request %s: %w", requestID, err)
	}
	customerID := req.GetString("customer")
	if customerID == "" {
		return Export{}, fmt.Errorf("data request %s names a customer opspine holds no data about: %w", requestID, ErrNotFound)
	}
	out, err := ExportCustomerData(app, customerID, actor, now)
	if err != nil {
		return out, err
	}
	err = sqlstore.Update(app.DB(), "data_requests", requestID, now, dbx.Params{
		"status": "exported", "exported_at": sqlstore.FormatTime(now), "exported_by": actor,
	})
	return out, err
}
