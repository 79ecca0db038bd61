package hooks_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"github.com/pocketbase/pocketbase/tools/archive"

	"github.com/opspine/opspine/app/inventory"
	"github.com/opspine/opspine/app/testkit"
)

// backupTables are the tables a restore must bring back row for row.
var backupTables = []string{"webhook_inbox", "orders", "order_items", "batches", "batch_status_history",
	"lab_results", "allocations", "allocation_queue", "inventory_movements"}

// backupState is, per table, the row count and a SHA-256 of every column of every row
// in id order.
func backupState(t *testing.T, app core.App) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range backupTables {
		var rows []dbx.NullStringMap
		if err := app.DB().NewQuery("SELECT * FROM " + table + " ORDER BY id").All(&rows); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		h := sha256.New()
		for _, row := range rows {
			b, err := json.Marshal(row)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(b)
			h.Write([]byte{'\n'})
		}
		out[table] = fmt.Sprintf("%d rows %s", len(rows), hex.EncodeToString(h.Sum(nil))[:16])
	}
	return out
}

// backupCreate makes a backup named name through the API as a superuser.
func backupCreate(t *testing.T, s *testkit.Server, token, name string) {
	t.Helper()
	code, body := s.Call(t, "POST", "/api/backups", token, fmt.Sprintf(`{"name": %q}`, name))
	if code != http.StatusNoContent {
		t.Fatalf("create backup %s: %d %s", name, code, body)
	}
}

// backupRestore restores backup name as an operator would by hand: unzip it into a
// fresh data directory and open an app on it (app.RestoreBackup would restart the
// process).
func backupRestore(t *testing.T, s *testkit.Server, name string) *tests.TestApp {
	t.Helper()
	dir := t.TempDir()
	if err := archive.Extract(filepath.Join(s.App.DataDir(), core.LocalBackupsDirName, name), dir); err != nil {
		t.Fatalf("extract %s: %v", name, err)
	}
	if _, err := os.Stat(filepath.Join(dir, core.LocalBackupsDirName)); err == nil {
		t.Errorf("%s holds the backups directory", name)
	}
	app, err := tests.NewTestApp(dir)
	if err != nil {
		t.Fatalf("open the restored copy: %v", err)
	}
	t.Cleanup(app.Cleanup)
	return app
}

// backupFile reads a stored file of a record in app's local storage.
func backupFile(t *testing.T, app core.App, rec *core.Record, field string) []byte {
	t.Helper()
	name := rec.GetString(field)
	if name == "" {
		t.Fatalf("batch %s has no %s", rec.Id, field)
	}
	b, err := os.ReadFile(filepath.Join(app.DataDir(), "storage", rec.BaseFilesPath(), name))
	if err != nil {
		t.Fatalf("%s of batch %s: %v", field, rec.Id, err)
	}
	return b
}

func backupLedger(t *testing.T, app core.App) {
	t.Helper()
	bad, err := inventory.VerifyLedger(app.DB())
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("ledger mismatches: %+v", bad)
	}
}

// A busy instance — orders from signed webhooks, a batch with its label PDF and QR code
// released by a lab result, paid orders allocated from it — is backed up through
// PocketBase's API twice and each backup restored into a fresh data directory:
//
//   - busy.zip is taken while deliveries keep arriving: every delivery acknowledged
//     before the backup was asked for is in the restored copy (an order is written by
//     the pipeline after the acknowledgement, so the inbox is what is counted), the copy
//     holds no more deliveries than the source did once the backup finished, and its
//     ledger adds up.
//     Exact equality is not asserted here: writes that wait on the backup's
//     transaction land in the source right after it, so a snapshot "right after the
//     backup" cannot be taken atomically with it.
//   - quiet.zip is taken once the deliveries are stopped and processed: the restored
//     copy has the same rows, column for column, in every table of orders, batches,
//     lab results, allocations and inventory movements as the source at backup time.
//
// Both copies hold the batch's label PDF and QR image with the source's bytes.
func TestBackupOfABusyInstanceRestoresTheSameOrdersBatchesAllocationsAndFiles(t *testing.T) {
	s := startBatches(t, nil)
	batchProduct(t, s.App, "PR-BEEF-2KG")
	operator := testkit.Token(t, s.App, "operator")
	superuser := testkit.Token(t, s.App, "superuser")

	code, body := s.Call(t, "POST", "/api/ops/batches", operator, `{"product_sku": "PR-BEEF-2KG", "produced_at": "2026-11-20", "units": 40}`)
	if code != http.StatusCreated {
		t.Fatalf("create batch: %d %s", code, body)
	}
	batchID := batchDecode[createdBatch](t, body).ID
	lab := postLabJSON(t, s, batchID, operator, `{"lab": "Eurofins Wolverhampton", "salmonella": "absent", "listeria": "absent",
		"enterobacteriaceae_cfu_per_g": 120, "reported_at": "2026-11-20"}`, http.StatusCreated)
	if lab.Batch.Status != "released" {
		t.Fatalf("lab result left the batch %s", lab.Batch.Status)
	}

	order := func(n int) testkit.Delivery {
		return testkit.Delivery{Topic: "orders/paid", Body: testkit.Order(testkit.WithOrderID(int64(7000+n)),
			testkit.WithStatus("paid", batchT0.Add(time.Duration(n)*time.Second))).JSON()}
	}
	for n := range 5 {
		if code := s.Deliver(t, order(n)); code != http.StatusOK {
			t.Fatalf("order %d: %d", n, code)
		}
	}
	s.WaitSettled(t)
	if n := testkit.Count(t, s.App, "allocations", "status = 'allocated'", nil); n == 0 {
		t.Fatal("no order was allocated from the released batch")
	}

	// deliveries keep arriving while busy.zip is made
	var (
		mu        sync.Mutex
		acked     []string // webhook ids answered 2xx, in order
		stop      atomic.Bool
		wg        sync.WaitGroup
		sendErr   error
		started   = make(chan struct{})
		startOnce sync.Once
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 5; !stop.Load(); n++ {
			d := order(n)
			d.WebhookID = fmt.Sprintf("busy-%d", n)
			code, err := s.Post(d)
			if err != nil || code/100 != 2 {
				mu.Lock()
				sendErr = fmt.Errorf("delivery %d during the backup: %d %v", n, code, err)
				mu.Unlock()
				return
			}
			mu.Lock()
			acked = append(acked, d.WebhookID)
			mu.Unlock()
			if n == 8 {
				startOnce.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("deliveries did not start")
	}
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	backupCreate(t, s, superuser, "busy.zip")
	inboxAfterBackup := testkit.Count(t, s.App, "webhook_inbox", "", nil)
	stop.Store(true)
	wg.Wait()
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	s.WaitSettled(t)
	t.Logf("%d deliveries acknowledged before the backup, %d in all", len(before), len(acked))

	busy := backupRestore(t, s, "busy.zip")
	for _, id := range before {
		if testkit.Count(t, busy, "webhook_inbox", "webhook_id = {:id}", dbx.Params{"id": id}) != 1 {
			t.Errorf("delivery %s was acknowledged before the backup but is not in it", id)
		}
	}
	if n := testkit.Count(t, busy, "webhook_inbox", "", nil); n < 5+len(before) || n > inboxAfterBackup {
		t.Errorf("restored copy holds %d deliveries, want between %d and %d", n, 5+len(before), inboxAfterBackup)
	}
	if n := testkit.Count(t, busy, "orders", "", nil); n < 5 {
		t.Errorf("restored copy holds %d orders, want at least the 5 processed before the backup", n)
	}
	backupLedger(t, busy)

	// with the deliveries stopped and processed, quiet.zip must restore exactly
	want := backupState(t, s.App)
	t.Logf("source at the time of quiet.zip: %v", want)
	backupCreate(t, s, superuser, "quiet.zip")
	if after := backupState(t, s.App); fmt.Sprint(after) != fmt.Sprint(want) {
		t.Fatalf("the source changed while quiet.zip was made:\n%v\n%v", want, after)
	}
	quiet := backupRestore(t, s, "quiet.zip")
	got := backupState(t, quiet)
	for _, table := range backupTables {
		if got[table] != want[table] {
			t.Errorf("%s: restored %s, source had %s", table, got[table], want[table])
		}
	}
	if testkit.Count(t, quiet, "allocations", "status = 'allocated'", nil) == 0 || testkit.Count(t, quiet, "lab_results", "", nil) != 1 {
		t.Errorf("restored copy lacks the allocations or the lab result: %v", got)
	}
	backupLedger(t, quiet)

	// the batch's files, in both restored copies, byte for byte
	src, err := s.App.FindRecordById("batches", batchID)
	if err != nil {
		t.Fatal(err)
	}
	for name, app := range map[string]core.App{"busy.zip": busy, "quiet.zip": quiet} {
		rec, err := app.FindRecordById("batches", batchID)
		if err != nil {
			t.Fatalf("%s: batch: %v", name, err)
		}
		if rec.GetString("status") != "released" {
			t.Errorf("%s: batch is %s", name, rec.GetString("status"))
		}
		for _, field := range []string{"label_pdf", "qr_image"} {
			orig := backupFile(t, s.App, src, field)
			if len(orig) == 0 {
				t.Fatalf("source %s is empty", field)
			}
			if !bytes.Equal(backupFile(t, app, rec, field), orig) {
				t.Errorf("%s: %s differs from the source", name, field)
			}
		}
	}
}
