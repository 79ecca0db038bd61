package hooks_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/testkit"
)

// shipTo records a customer, an order with one line of sku and an allocation of
// quantity units of the batch to it; it returns the order id.
func shipTo(t *testing.T, s *testkit.Server, batch, number, first, last, email, sku string, quantity int, status string, ordered time.Time) string {
	t.Helper()
	save := func(collection string, fields map[string]any) string {
		t.Helper()
		col, err := s.App.FindCollectionByNameOrId(collection)
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecord(col, fields)
		if err := s.App.Save(rec); err != nil {
			t.Fatalf("save %s: %v", collection, err)
		}
		return rec.Id
	}
	customer := save("customers", map[string]any{"email": email, "first_name": first, "last_name": last})
	order := save("orders", map[string]any{"order_number": number, "shopify_order_id": number, "customer": customer, "email": email, "status": "paid",
		"currency": "GBP", "total_minor": 4200, "shopify_created_at": ordered})
	item := save("order_items", map[string]any{"order": order, "shopify_line_item_id": number + "-1", "sku": sku, "quantity": quantity, "current_quantity": quantity})
	save("allocations", map[string]any{"batch": batch, "order": order, "order_item": item, "quantity": quantity, "status": status})
	return order
}

func TestRecallGivesTheForwardTraceAsJSONAndSafeCSV(t *testing.T) {
	s := start(t, nil)
	manager := testkit.Token(t, s.App, "manager")
	operator := testkit.Token(t, s.App, "operator")
	batch := labBatch(t, s, "B-261119-001")
	if _, err := batches.Transition(s.App, batch, "released", "test", "lab pass", "", t0); err != nil {
		t.Fatal(err)
	}
	other := labBatch(t, s, "B-261119-002")
	shipTo(t, s, batch, "PR-1001", "Ada", "Lovelace", "ada@example.com", "RAW-BEEF-2KG", 2, "dispatched", t0.Add(-48*time.Hour))
	shipTo(t, s, batch, "PR-1002", "=HYPERLINK(\"http://evil\")", "Smith", "+44@example.com", "RAW-BEEF-2KG", 1, "allocated", t0.Add(-24*time.Hour))
	shipTo(t, s, batch, "PR-1003", "Returned", "Units", "back@example.com", "RAW-BEEF-2KG", 3, "released", t0.Add(-12*time.Hour))
	shipTo(t, s, other, "PR-1004", "Not", "Affected", "other@example.com", "RAW-LAMB-2KG", 5, "dispatched", t0.Add(-12*time.Hour))
	path := "/api/ops/batches/" + batch

	for _, c := range []struct {
		name, method, url, token, body string
		want                           int
	}{
		{"operator recall", "POST", path + "/recall", operator, `{"reason":"Salmonella found in retained sample"}`, 403},
		{"operator trace", "GET", path + "/trace.csv", operator, "", 403},
		{"no reason", "POST", path + "/recall", manager, `{}`, 400},
		{"unknown batch", "POST", "/api/ops/batches/nosuchbatch1234/recall", manager, `{"reason":"x"}`, 404},
	} {
		if code, body := s.Call(t, c.method, c.url, c.token, c.body); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
	if got := batchStatus(t, s, batch); got != "released" {
		t.Fatalf("refused recalls changed the batch to %s", got)
	}

	code, body := s.Call(t, "POST", path+"/recall", manager, `{"reason":"Salmonella found in retained sample"}`)
	if code != 200 {
		t.Fatalf("recall: %d %s", code, body)
	}
	var res struct {
		Recall struct {
			batches.RecallResult
		} `json:"recall"`
		TraceCSV string `json:"trace_csv"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	r := res.Recall
	if !r.Changed || r.From != "released" || r.To != "recalled" || r.AlreadyRecalled {
		t.Errorf("change %+v", r.Change)
	}
	if r.Orders != 2 || r.Customers != 2 || r.Units != 3 || len(r.Trace) != 3 {
		t.Errorf("affected: %d orders, %d customers, %d units, %d rows: %s", r.Orders, r.Customers, r.Units, len(r.Trace), body)
	}
	first := r.Trace[0]
	if first.OrderNumber != "PR-1001" || first.CustomerName != "Ada Lovelace" || first.CustomerEmail != "ada@example.com" ||
		first.SKU != "RAW-BEEF-2KG" || first.Quantity != 2 || first.AllocationStatus != "dispatched" || !first.OrderDate.Equal(t0.Add(-48*time.Hour)) {
		t.Errorf("first trace row %+v", first)
	}
	if got := batchStatus(t, s, batch); got != "recalled" {
		t.Errorf("batch is %s", got)
	}
	if n := testkit.Count(t, s.App, "alerts", "dedupe_key = {:k} AND severity = 'critical'", dbx.Params{"k": "batch-recalled:" + batch}); n != 1 {
		t.Errorf("%d recall alerts", n)
	}

	req, _ := http.NewRequest("GET", s.URL+res.TraceCSV, nil)
	req.Header.Set("Authorization", manager)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="B-261119-001-trace.csv"`) {
		t.Fatalf("trace.csv: %d %v", resp.StatusCode, resp.Header)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"Batch code", "Order number", "Order date", "Customer name", "Customer email", "SKU", "Quantity", "Allocation status"},
		{"B-261119-001", "PR-1001", "2026-11-18", "Ada Lovelace", "ada@example.com", "RAW-BEEF-2KG", "2", "dispatched"},
		{"B-261119-001", "PR-1002", "2026-11-19", `'=HYPERLINK("http://evil") Smith`, "'+44@example.com", "RAW-BEEF-2KG", "1", "allocated"},
		{"B-261119-001", "PR-1003", "2026-11-19", "Returned Units", "back@example.com", "RAW-BEEF-2KG", "3", "released"},
	}
	if len(rows) != len(want) {
		t.Fatalf("CSV rows %q", rows)
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("CSV row %d: %q, want %q", i, rows[i], want[i])
		}
	}

	// recalling again changes nothing and gives the same trace
	historyBefore := testkit.Count(t, s.App, "batch_status_history", "batch = {:b}", dbx.Params{"b": batch})
	code, body = s.Call(t, "POST", path+"/recall", manager, `{"reason":"again"}`)
	if code != 200 || !strings.Contains(string(body), `"already_recalled":true`) || !strings.Contains(string(body), "PR-1002") {
		t.Errorf("second recall: %d %s", code, body)
	}
	if n := testkit.Count(t, s.App, "batch_status_history", "batch = {:b}", dbx.Params{"b": batch}); n != historyBefore {
		t.Errorf("second recall wrote history: %d → %d", historyBefore, n)
	}
}
