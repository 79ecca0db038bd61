package ingest_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/app/retry"
	"github.com/opspine/opspine/app/testkit"
)

// Every statement that processing, retrying, reprocessing and redaction really run
// searches an index, never scans a table: a scan of customers per delivery was most of
// the processing time at ten thousand customers. The statements are captured as they
// run and explained afterwards.
func TestProcessingStatementsSearchIndexes(t *testing.T) {
	app := testkit.NewApp(t)
	if err := ingest.EnsureShop(app, testkit.Shop, []string{testkit.Secret}, ""); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	capture := func(q string) {
		mu.Lock()
		seen[q] = true
		mu.Unlock()
	}
	for _, b := range []dbx.Builder{app.ConcurrentDB(), app.NonconcurrentDB()} {
		db := b.(*dbx.DB)
		db.QueryLogFunc = func(_ context.Context, _ time.Duration, q string, _ *sql.Rows, _ error) { capture(q) }
		db.ExecLogFunc = func(_ context.Context, _ time.Duration, q string, _ sql.Result, _ error) { capture(q) }
	}
	proc := &ingest.Processor{App: app, MaxAttempts: 2, Backoff: retry.Backoff{Base: time.Minute, Max: time.Hour}}
	deliver := func(topic string, body []byte) string {
		id, _, err := ingest.StoreDelivery(app.DB(), ingest.Delivery{Source: ingest.SourceWebhook, Topic: topic, ShopDomain: testkit.Shop,
			WebhookID: fmt.Sprintf("%s-%d", topic, time.Now().UnixNano()), Payload: body, Headers: map[string]string{}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := proc.Process(id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	deliver("orders/create", testkit.Order().JSON())
	deliver("orders/create", testkit.Order(testkit.WithOrderID(77), func(d testkit.Doc) { d["customer"] = nil }).JSON())
	deliver("customers/update", testkit.Customer(9007199254741123, "jane.doe@example.com", time.Now()).JSON())
	refund := deliver("refunds/create", testkit.Refund(5, "404", "1.00").JSON())
	deliver("refunds/create", testkit.Refund(6, "404", "1.00").JSON())
	if _, err := ingest.DueDeliveries(app.DB(), time.Now().Add(time.Hour), ingest.PendingGrace, 10); err != nil {
		t.Fatal(err)
	}
	if err := ingest.RequestReprocess(app, refund, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	deliver("customers/redact", testkit.CustomerRedact(testkit.Shop, 9007199254741123, "jane.doe@example.com", "9007199254740993").JSON())

	mu.Lock()
	defer mu.Unlock()
	for _, b := range []dbx.Builder{app.ConcurrentDB(), app.NonconcurrentDB()} {
		db := b.(*dbx.DB)
		db.QueryLogFunc, db.ExecLogFunc = nil, nil
	}
	checked := 0
	for q := range seen {
		verb := strings.ToUpper(strings.Fields(q)[0])
		if verb != "SELECT" && verb != "UPDATE" && verb != "DELETE" {
			continue
		}
		if strings.Contains(q, "FROM `shops`") || strings.Contains(q, "_collections") || strings.Contains(q, "FROM shops") && !strings.Contains(q, "WHERE") {
			continue // PocketBase's own record lookups (EnsureShop) and the one-row shops table
		}
		var plan []struct {
			Detail string `db:"detail"`
		}
		q = strings.ReplaceAll(q, "<nil>", "NULL") // how the log renders a nil value
		if err := app.DB().NewQuery("EXPLAIN QUERY PLAN " + q).All(&plan); err != nil {
			t.Fatalf("explain %s: %v", q, err)
		}
		checked++
		for _, p := range plan {
			if strings.HasPrefix(p.Detail, "SCAN ") {
				t.Errorf("scans instead of searching: %s\n  %s", p.Detail, q)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d statements captured: the capture does not work", checked)
	}
}
