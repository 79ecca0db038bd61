package proof_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/proof"
	"github.com/opspine/opspine/app/sqlstore"
	"github.com/opspine/opspine/app/testkit"
)

// seedBatch writes a product and a batch with plain SQL and returns the batch id.
func seedBatch(t testing.TB, app core.App, publicID, status string) string {
	t.Helper()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	product, err := sqlstore.Insert(app.DB(), "products", now, dbx.Params{"sku": "SKU-" + publicID, "name": "Beef Complete", "storage_temp_min_c": -25, "storage_temp_max_c": -18})
	if err != nil {
		t.Fatal(err)
	}
	id, err := sqlstore.Insert(app.DB(), "batches", now, dbx.Params{
		"code": "PR-261121-" + publicID[:3], "product": product, "status": status, "public_id": publicID,
		"produced_at": "2026-11-21 09:00:00.000Z", "expiry_date": "2027-02-19 00:00:00.000Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func seedLabResult(t testing.TB, app core.App, batchID string, at time.Time, cols dbx.Params) string {
	t.Helper()
	cols["batch"] = batchID
	id, err := sqlstore.Insert(app.DB(), "lab_results", at, cols)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestFindBatchProofByPublicID checks the lookup: the latest lab result wins, the
// Enterobacteriaceae limit comes from config when staff set one, and an unknown id is
// ErrBatchNotFound.
func TestFindBatchProofByPublicID(t *testing.T) {
	app := testkit.NewApp(t)
	batch := seedBatch(t, app, "aaaabbbbccccdddd", "released")
	older := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	seedLabResult(t, app, batch, older, dbx.Params{"lab": "First Lab", "salmonella": "detected", "outcome": "fail"})
	latest := seedLabResult(t, app, batch, older.Add(time.Hour), dbx.Params{
		"lab": "Retest Lab", "salmonella": "absent", "enterobacteriaceae_tested": true, "enterobacteriaceae_cfu_per_g": 280,
		"outcome": "pass", "report_pdf": "retest.pdf",
	})

	found, err := proof.FindBatchProofByPublicID(app.DB(), "aaaabbbbccccdddd", "Brand", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	v := found.View
	if found.BatchID != batch || found.LabResultID != latest || found.ReportFile != "retest.pdf" || !found.HasReport() {
		t.Errorf("internal refs %+v", found)
	}
	if v.Lab != "Retest Lab" || len(v.Tests) != 2 || !v.Tests[0].Passed() || v.Tests[1].Limit != "≤ 300 cfu/g" {
		t.Errorf("view %+v", v)
	}
	if v.Product != "Beef Complete" || v.Storage != "Store between -25 °C and -18 °C" || v.UseBy.ISO() != "2027-02-19" {
		t.Errorf("product %q, storage %q, use by %s", v.Product, v.Storage, v.UseBy.ISO())
	}

	if _, err := app.DB().NewQuery(`INSERT INTO config (id, key, value, unit, description, created, updated)
		VALUES ('cfgentero000001', {:key}, 100, 'cfu/g', 'test', '', '')`).Bind(dbx.Params{"key": proof.EnterobacteriaceaeLimitKey}).Execute(); err != nil {
		t.Fatal(err)
	}
	found, err = proof.FindBatchProofByPublicID(app.DB(), "aaaabbbbccccdddd", "Brand", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if e := found.View.Tests[1]; e.Limit != "≤ 100 cfu/g" || !e.Failed() {
		t.Errorf("with a configured limit of 100: %+v", e)
	}

	if _, err := proof.FindBatchProofByPublicID(app.DB(), "0000000000000000", "Brand", time.UTC); !errors.Is(err, proof.ErrBatchNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	heldID := seedBatch(t, app, "eeeeffff00001111", "qa_hold")
	held, err := proof.FindBatchProofByPublicID(app.DB(), "eeeeffff00001111", "Brand", time.UTC)
	if err != nil || held.BatchID != heldID || held.HasReport() || held.View.Verdict != proof.VerdictAwaiting {
		t.Errorf("held batch %+v %v", held, err)
	}
}

// TestFindBatchProofIsOneIndexedQuery checks the page costs one statement, and that
// SQLite answers it from indexes, never by scanning batches or lab_results.
func TestFindBatchProofIsOneIndexedQuery(t *testing.T) {
	app := testkit.NewApp(t)
	for _, id := range []string{"a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2", "c3c3c3c3c3c3c3c3"} {
		b := seedBatch(t, app, id, "released")
		seedLabResult(t, app, b, time.Now().UTC(), dbx.Params{"lab": "L", "salmonella": "absent"})
	}
	var mu sync.Mutex
	var statements []string
	for _, b := range []dbx.Builder{app.ConcurrentDB(), app.NonconcurrentDB()} {
		db, ok := b.(*dbx.DB)
		if !ok {
			t.Fatalf("database is %T", b)
		}
		prevQ, prevE := db.QueryLogFunc, db.ExecLogFunc
		db.QueryLogFunc = func(_ context.Context, _ time.Duration, sql string, _ *sql.Rows, _ error) {
			mu.Lock()
			statements = append(statements, sql)
			mu.Unlock()
		}
		db.ExecLogFunc = func(_ context.Context, _ time.Duration, sql string, _ sql.Result, _ error) {
			mu.Lock()
			statements = append(statements, sql)
			mu.Unlock()
		}
		defer func() { db.QueryLogFunc, db.ExecLogFunc = prevQ, prevE }()
	}
	_, err := proof.FindBatchProofByPublicID(app.DB(), "b2b2b2b2b2b2b2b2", "Brand", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(statements) != 1 {
		t.Fatalf("%d statements, want 1:\n%s", len(statements), strings.Join(statements, "\n"))
	}
	var plan []struct {
		ID      int    `db:"id"`
		Parent  int    `db:"parent"`
		NotUsed int    `db:"notused"`
		Detail  string `db:"detail"`
	}
	if err := app.DB().NewQuery("EXPLAIN QUERY PLAN " + statements[0]).All(&plan); err != nil {
		t.Fatal(err)
	}
	var details []string
	for _, p := range plan {
		details = append(details, p.Detail)
		if strings.HasPrefix(p.Detail, "SCAN ") {
			t.Errorf("the lookup scans a table: %s", p.Detail)
		}
	}
	t.Logf("plan:\n%s", strings.Join(details, "\n"))
}

// BenchmarkProofPageLookupAndRender is the work of one proof page view apart from HTTP:
// the lookup and the rendering.
func BenchmarkProofPageLookupAndRender(b *testing.B) {
	app := testkit.NewApp(b)
	batch := seedBatch(b, app, "aaaabbbbccccdddd0000", "released")
	seedLabResult(b, app, batch, time.Now().UTC(), dbx.Params{
		"lab": "L", "salmonella": "absent", "listeria": "absent", "enterobacteriaceae_tested": true, "enterobacteriaceae_cfu_per_g": 40,
		"other_tests": `[{"name":"Total viable count","result":12000,"unit":"cfu/g","limit":500000,"pass":true}]`,
	})
	for b.Loop() {
		found, err := proof.FindBatchProofByPublicID(app.DB(), "aaaabbbbccccdddd0000", "Brand", time.UTC)
		if err != nil {
			b.Fatal(err)
		}
		if err := proof.RenderBatchPage(io.Discard, &found.View, proof.NewNonce()); err != nil {
			b.Fatal(err)
		}
	}
}
