package batches_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/testkit"
)

type batchRow struct {
	ID         string  `db:"id"`
	Code       string  `db:"code"`
	Product    string  `db:"product"`
	ProducedAt string  `db:"produced_at"`
	Units      int     `db:"quantity_units"`
	Kg         float64 `db:"kg_produced"`
	Expiry     string  `db:"expiry_date"`
	Status     string  `db:"status"`
	PublicID   string  `db:"public_id"`
	QR         string  `db:"qr_image"`
	Label      string  `db:"label_pdf"`
	QAHoldAt   string  `db:"qa_hold_at"`
	Notes      string  `db:"notes"`
	CreatedBy  string  `db:"created_by"`
}

func loadBatch(t testing.TB, app core.App, id string) batchRow {
	t.Helper()
	var r batchRow
	if err := app.DB().NewQuery(`SELECT id, code, product, produced_at, quantity_units, kg_produced, expiry_date, status,
		public_id, qr_image, label_pdf, qa_hold_at, notes, created_by FROM batches WHERE id = {:id}`).
		Bind(dbx.Params{"id": id}).One(&r); err != nil {
		t.Fatalf("load batch %s: %v", id, err)
	}
	return r
}

// storedFiles lists every file under the app's storage directory (not the storage
// driver's .attrs beside them).
func storedFiles(t testing.TB, app core.App) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(filepath.Join(app.DataDir(), "storage"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".attrs") {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func readFile(t testing.TB, app core.App, rec *core.Record, name string) []byte {
	t.Helper()
	fsys, err := app.NewFilesystem()
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	r, err := fsys.GetReader(rec.BaseFilesPath() + "/" + name)
	if err != nil {
		t.Fatalf("read stored %s: %v", name, err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return b
}

// A batch made from kg is held for QA with its code, public id, QR, label, history,
// ops event and the co-packer's email, and its label scans to its proof page.
func TestCreateBatchWritesEverythingOnQAHold(t *testing.T) {
	app := testkit.NewApp(t)
	product := addProduct(t, app, "PR-BEEF-500", nil)
	deps := testDeps(t0)
	deps.CopackerEmail = "production@copacker.test"

	// a date, today, before midday: it is stored as midday but is not "in the future"
	c, err := batches.Create(app, batches.Input{ProductSKU: "PR-BEEF-500", ProducedAt: time.Date(2026, 11, 21, 0, 0, 0, 0, london),
		ProducedDateOnly: true, KgProduced: floatp(500), Notes: "  Line 2, morning run ", Actor: "staff:abc"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	b := loadBatch(t, app, c.Batch.Id)
	want := batchRow{ID: c.Batch.Id, Code: "B-261121-001", Product: product.Id, ProducedAt: "2026-11-21 12:00:00.000Z",
		Units: 1000, Kg: 500, Expiry: "2027-05-20 11:00:00.000Z", Status: "qa_hold", QAHoldAt: "2026-11-21 09:00:00.000Z",
		Notes: "Line 2, morning run", CreatedBy: "staff:abc", PublicID: b.PublicID, QR: b.QR, Label: b.Label}
	if b != want {
		t.Errorf("batch\n got %+v\nwant %+v", b, want)
	}
	if len(b.PublicID) != batches.PublicIDLength || strings.Contains(b.PublicID, "261121") {
		t.Errorf("public id %q", b.PublicID)
	}
	if c.ProofURL != publicURL+"/proof/"+b.PublicID {
		t.Errorf("proof URL %s", c.ProofURL)
	}
	if b.QR == "" || b.Label == "" {
		t.Fatalf("files not stored: qr %q label %q", b.QR, b.Label)
	}
	stored := readFile(t, app, c.Batch, b.Label)
	if string(stored) != string(c.LabelPDF) {
		t.Error("the stored label is not the label made")
	}
	if got := pdfQR(t, stored); got != c.ProofURL {
		t.Errorf("label QR reads %q, want %q", got, c.ProofURL)
	}
	if !strings.HasPrefix(string(readFile(t, app, c.Batch, b.QR)), "\x89PNG") {
		t.Error("qr_image is not a PNG")
	}
	text := strings.Join(strings.Fields(pdfText(t, stored)), " ")
	for _, w := range []string{"Beef Complete", "B-261121-001", "Produced 21 Nov 2026", "Use by 20 May 2027", "Store between -25°C and -18°C"} {
		if !strings.Contains(text, w) {
			t.Errorf("label lacks %q: %s", w, text)
		}
	}

	p := dbx.Params{"id": c.Batch.Id}
	if n := testkit.Count(t, app, "batch_status_history", "batch = {:id} AND from_status = '' AND to_status = 'qa_hold' AND actor = 'staff:abc' AND reason = 'created' AND created = '2026-11-21 09:00:00.000Z'", p); n != 1 {
		t.Errorf("%d history rows for the creation, want 1", n)
	}
	if n := testkit.Count(t, app, "ops_events", "entity_type = 'batch' AND entity_id = {:id} AND kind = 'batch.created' AND actor = 'staff:abc'", p); n != 1 {
		t.Errorf("%d batch.created events, want 1", n)
	}
	var email struct {
		ID      string `db:"id"`
		To      string `db:"to"`
		Subject string `db:"subject"`
		Text    string `db:"text_body"`
		Meta    string `db:"attachment_meta"`
		Files   string `db:"attachments"`
		Key     string `db:"idempotency_key"`
	}
	if err := app.DB().NewQuery("SELECT id, [[to]], subject, text_body, attachment_meta, attachments, idempotency_key FROM email_outbox").One(&email); err != nil {
		t.Fatal(err)
	}
	if email.ID != c.EmailID || email.To != "production@copacker.test" || email.Key != "copacker_label:"+c.Batch.Id ||
		email.Subject != "New batch label for B-261121-001" || !strings.Contains(email.Text, "500 kg produced on Saturday 21 November 2026") ||
		!strings.Contains(email.Text, c.ProofURL) {
		t.Errorf("email %+v", email)
	}
	var meta []struct{ File, Name, Content_type string }
	var files []string
	json.Unmarshal([]byte(email.Meta), &meta)
	json.Unmarshal([]byte(email.Files), &files)
	if len(meta) != 1 || len(files) != 1 || meta[0].Name != "B-261121-001-label.pdf" || meta[0].Content_type != "application/pdf" {
		t.Fatalf("attachments %s %s", email.Files, email.Meta)
	}
	emailRec, _ := app.FindRecordById("email_outbox", email.ID)
	if string(readFile(t, app, emailRec, files[0])) != string(c.LabelPDF) {
		t.Error("the attached PDF is not the batch's label")
	}
}

func TestCreateBatchConvertsKgAndUnits(t *testing.T) {
	app := testkit.NewApp(t)
	addProduct(t, app, "HALF", nil)
	addProduct(t, app, "THIRD", map[string]any{"kg_per_unit": 0.3, "unit": "box"})
	addProduct(t, app, "CAKE", map[string]any{"kg_per_unit": 0, "unit": "cake", "shelf_life_days": 3})
	cases := []struct {
		sku       string
		units     *int
		kg        *float64
		wantUnits int
		wantKg    float64
		wantErr   string
	}{
		{"HALF", nil, floatp(500), 1000, 500, ""},
		{"HALF", intp(1000), nil, 1000, 500, ""},
		{"THIRD", nil, floatp(300), 1000, 300, ""},
		{"THIRD", nil, floatp(0.9), 3, 0.9, ""}, // 0.9/0.3 is 2.9999999999999996 in floating point
		{"THIRD", intp(7), nil, 7, 2.1, ""},
		{"THIRD", nil, floatp(500), 0, 0, "500 kg is not a whole number of 0.3 kg boxes of THIRD (it is 1666.67); give units, or the nearest counts: 499.8 kg (1666 boxes) or 500.1 kg (1667 boxes)."},
		{"THIRD", nil, floatp(0.1), 0, 0, "nearest counts: 0.3 kg (1 boxes)."},
		{"CAKE", intp(12), nil, 12, 0, ""},
		{"CAKE", nil, floatp(5), 0, 0, "Product CAKE has no kg per unit, so kg cannot be converted: give units, or set kg_per_unit on the product."},
	}
	for _, c := range cases {
		res, err := batches.Create(app, batches.Input{ProductSKU: c.sku, ProducedAt: t0, Units: c.units, KgProduced: c.kg}, testDeps(t0))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: error %v, want %q", c.sku, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.sku, err)
			continue
		}
		if b := loadBatch(t, app, res.Batch.Id); b.Units != c.wantUnits || b.Kg != c.wantKg {
			t.Errorf("%s: %d units, %v kg; want %d, %v", c.sku, b.Units, b.Kg, c.wantUnits, c.wantKg)
		}
	}
}

// Every rejected input says what to send and leaves no row and no file behind.
func TestCreateBatchRejectsInputAndWritesNothing(t *testing.T) {
	app := testkit.NewApp(t)
	addProduct(t, app, "PR-BEEF-500", nil)
	addProduct(t, app, "NO-SHELF-LIFE", map[string]any{"shelf_life_days": 0})
	deps := testDeps(t0)
	deps.CopackerEmail = "production@copacker.test"
	base := func() batches.Input {
		return batches.Input{ProductSKU: "PR-BEEF-500", ProducedAt: t0, KgProduced: floatp(500), Actor: "staff:x"}
	}
	cases := []struct {
		name   string
		change func(*batches.Input)
		field  string
		want   string
	}{
		{"unknown SKU", func(in *batches.Input) { in.ProductSKU = "PR-NOPE" }, "product_sku", `No product with SKU "PR-NOPE"`},
		{"no product", func(in *batches.Input) { in.ProductSKU = "" }, "product_sku", "Give product_sku"},
		{"unknown product id", func(in *batches.Input) { in.ProductSKU, in.ProductID = "", "nosuchproduct00" }, "product", "No product with id"},
		{"both quantities", func(in *batches.Input) { in.Units = intp(1000) }, "units", "not both"},
		{"no quantity", func(in *batches.Input) { in.KgProduced = nil }, "units", "Give the quantity produced: units (pouches of PR-BEEF-500) or kg_produced."},
		{"zero units", func(in *batches.Input) { in.KgProduced, in.Units = nil, intp(0) }, "units", "at least 1"},
		{"negative kg", func(in *batches.Input) { in.KgProduced = floatp(-5) }, "kg_produced", "more than 0"},
		{"kg not whole units", func(in *batches.Input) { in.KgProduced = floatp(500.2) }, "kg_produced", "500 kg (1000 pouches) or 500.5 kg (1001 pouches)"},
		{"no production time", func(in *batches.Input) { in.ProducedAt = time.Time{} }, "produced_at", "Give produced_at"},
		{"produced tomorrow", func(in *batches.Input) { in.ProducedAt = time.Date(2026, 11, 22, 0, 0, 0, 0, london) }, "produced_at", "The production time 22 Nov 2026 00:00 is in the future (it is now 21 Nov 2026 09:00 in Europe/London)"},
		{"produced on a later date", func(in *batches.Input) {
			in.ProducedAt, in.ProducedDateOnly = time.Date(2026, 11, 22, 0, 0, 0, 0, london), true
		}, "produced_at", "The production date 22 Nov 2026 is after today (21 Nov 2026 in Europe/London)"},
		{"produced in an hour", func(in *batches.Input) { in.ProducedAt = t0.Add(time.Hour) }, "produced_at", "in the future"},
		{"expiry before production", func(in *batches.Input) { in.ExpiryDate = time.Date(2026, 11, 20, 0, 0, 0, 0, london) }, "expiry_date", "The expiry date 20 Nov 2026 is before the production day 21 Nov 2026."},
		{"no shelf life, no expiry", func(in *batches.Input) { in.ProductSKU = "NO-SHELF-LIFE" }, "expiry_date", "Product NO-SHELF-LIFE has no shelf life: give expiry_date"},
	}
	counts := func() [4]int {
		return [4]int{testkit.Count(t, app, "batches", "", nil), testkit.Count(t, app, "batch_status_history", "", nil),
			testkit.Count(t, app, "ops_events", "", nil), testkit.Count(t, app, "email_outbox", "", nil)}
	}
	before := counts()
	for _, c := range cases {
		in := base()
		c.change(&in)
		_, err := batches.Create(app, in, deps)
		var ie *batches.InputError
		if !errors.As(err, &ie) || !errors.Is(err, batches.ErrInvalidInput) {
			t.Errorf("%s: error %v, want an input error", c.name, err)
			continue
		}
		if ie.Field != c.field || !strings.Contains(ie.Message, c.want) {
			t.Errorf("%s: %s: %q, want %s: %q", c.name, ie.Field, ie.Message, c.field, c.want)
		}
		if after := counts(); after != before {
			t.Errorf("%s: rows (batches, history, events, emails) went from %v to %v", c.name, before, after)
		}
	}
	if files := storedFiles(t, app); len(files) != 0 {
		t.Errorf("files left in storage after rejected inputs: %v", files)
	}
	// and the same input, corrected, is accepted: the cases above failed for their reason only
	if _, err := batches.Create(app, base(), deps); err != nil {
		t.Fatalf("the base input: %v", err)
	}
}

// A failure after the batch row is written (here the co-packer email, refused for its
// address) rolls back the batch, its history and its files.
func TestCreateBatchRollsBackWhenALaterWriteFails(t *testing.T) {
	app := testkit.NewApp(t)
	addProduct(t, app, "PR-BEEF-500", nil)
	deps := testDeps(t0)
	deps.CopackerEmail = "not an address"
	_, err := batches.Create(app, batches.Input{ProductSKU: "PR-BEEF-500", ProducedAt: t0, KgProduced: floatp(500)}, deps)
	if err == nil || !strings.Contains(err.Error(), "co-packer email") {
		t.Fatalf("error %v, want the co-packer email's", err)
	}
	for _, table := range []string{"batches", "batch_status_history", "ops_events", "email_outbox"} {
		if n := testkit.Count(t, app, table, "", nil); n != 0 {
			t.Errorf("%d rows in %s after a failed creation", n, table)
		}
	}
	if files := storedFiles(t, app); len(files) != 0 {
		t.Errorf("files left in storage after a failed creation: %v", files)
	}
}

// The code's day is the production day in business time (Europe/London): 23:30 UTC
// on a summer evening is already the next day there, not in winter. Each day counts
// from 001.
func TestBatchCodeIsTheBusinessDayWithADailySequence(t *testing.T) {
	app := testkit.NewApp(t)
	addProduct(t, app, "PR-BEEF-500", nil)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		produced   time.Time
		code       string
		producedOn string
		useBy      string
	}{
		{time.Date(2026, 7, 14, 22, 30, 0, 0, time.UTC), "B-260714-001", "14 Jul 2026", "10 Jan 2027"},
		{time.Date(2026, 7, 14, 23, 30, 0, 0, time.UTC), "B-260715-001", "15 Jul 2026", "11 Jan 2027"},
		{time.Date(2026, 7, 14, 12, 0, 0, 0, time.UTC), "B-260714-002", "14 Jul 2026", "10 Jan 2027"},
		{time.Date(2026, 7, 15, 8, 0, 0, 0, time.UTC), "B-260715-002", "15 Jul 2026", "11 Jan 2027"},
		{time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC), "B-261121-001", "21 Nov 2026", "20 May 2027"},
		{time.Date(2026, 11, 22, 0, 30, 0, 0, time.UTC), "B-261122-001", "22 Nov 2026", "21 May 2027"},
	}
	for _, c := range cases {
		res, err := batches.Create(app, batches.Input{ProductSKU: "PR-BEEF-500", ProducedAt: c.produced, Units: intp(10)}, testDeps(now))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(pdfText(t, res.LabelPDF)), " ")
		if got := res.Batch.GetString("code"); got != c.code {
			t.Errorf("produced %s: code %s, want %s", c.produced, got, c.code)
		}
		if !strings.Contains(text, "Produced "+c.producedOn) || !strings.Contains(text, "Use by "+c.useBy) {
			t.Errorf("produced %s: label %q, want produced %s, use by %s", c.produced, text, c.producedOn, c.useBy)
		}
	}
}

func TestGivenExpiryDateIsKept(t *testing.T) {
	app := testkit.NewApp(t)
	addProduct(t, app, "PR-BEEF-500", nil)
	res, err := batches.Create(app, batches.Input{ProductSKU: "PR-BEEF-500", ProducedAt: t0, Units: intp(10),
		ExpiryDate: time.Date(2027, 3, 31, 0, 0, 0, 0, london)}, testDeps(t0))
	if err != nil {
		t.Fatal(err)
	}
	// 31 March 2027 is in British Summer Time: midday there is 11:00 UTC
	if b := loadBatch(t, app, res.Batch.Id); b.Expiry != "2027-03-31 11:00:00.000Z" {
		t.Errorf("expiry %s", b.Expiry)
	}
	if text := pdfText(t, res.LabelPDF); !strings.Contains(text, "Use by 31 Mar 2027") {
		t.Errorf("label: %s", text)
	}
}

// Another process writing a batch while this one is created waits for it (the creating
// transaction is SQLite's writer from its start) and cannot take its code: the unique
// index refuses it.
func TestAnotherProcessCannotTakeTheCodeBeingCreated(t *testing.T) {
	app := testkit.NewApp(t)
	addProduct(t, app, "PR-BEEF-500", nil)
	other, err := sql.Open("sqlite", filepath.Join(app.DataDir(), "data.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherDone := make(chan error, 1)
	deps := batches.WithBeforeInsert(testDeps(t0), func(_ core.App, code string) {
		go func() {
			_, err := other.Exec(`INSERT INTO batches (id, code, public_id, status) VALUES ('otherprocess001', ?, 'otherprocesspublicid', 'qa_hold')`, code)
			otherDone <- err
		}()
		time.Sleep(50 * time.Millisecond) // the other process is waiting for the lock now
	})
	res, err := batches.Create(app, batches.Input{ProductSKU: "PR-BEEF-500", ProducedAt: t0, Units: intp(10)}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Batch.GetString("code"); got != "B-261121-001" {
		t.Errorf("code %s, want B-261121-001", got)
	}
	if err := <-otherDone; err == nil || !strings.Contains(strings.ToLower(err.Error()), "unique constraint failed: batches.code") {
		t.Errorf("the other process's insert of the same code: %v, want refused by the unique index", err)
	}
}

// Should a code be taken between the read of the day's codes and the write anyway (a
// hand edit, a process that skips the lock), the unique index refuses the batch, the
// whole transaction rolls back and Create tries again.
func TestCreateBatchRetriesWhenItsCodeIsTaken(t *testing.T) {
	app := testkit.NewApp(t)
	addProduct(t, app, "PR-BEEF-500", nil)
	var attempts []string
	deps := batches.WithBeforeInsert(testDeps(t0), func(txApp core.App, code string) {
		attempts = append(attempts, code)
		if len(attempts) == 1 {
			// stands in for a row another writer committed; written in this
			// transaction, it goes with the rollback, so the retry finds the code free
			if _, err := txApp.DB().NewQuery(`INSERT INTO batches (id, code, public_id, status)
				VALUES ('taken0000000001', {:code}, 'takenpublicid00', 'qa_hold')`).Bind(dbx.Params{"code": code}).Execute(); err != nil {
				t.Errorf("take the code: %v", err)
			}
		}
	})
	res, err := batches.Create(app, batches.Input{ProductSKU: "PR-BEEF-500", ProducedAt: t0, Units: intp(10)}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 2 {
		t.Errorf("attempts %v, want two", attempts)
	}
	if got := res.Batch.GetString("code"); got != "B-261121-001" {
		t.Errorf("code %s, want B-261121-001", got)
	}
	for table, want := range map[string]int{"batches": 1, "batch_status_history": 1, "ops_events": 1} {
		if n := testkit.Count(t, app, table, "", nil); n != want {
			t.Errorf("%d rows in %s, want %d: the failed attempt left something", n, table, want)
		}
	}
	if files := storedFiles(t, app); len(files) != 2 {
		t.Errorf("stored files %v, want the batch's QR and label only", files)
	}
}

// The label route serves the stored label; when the file is gone (a database restored
// without its files) the label is rendered again and still opens the proof page.
func TestReadLabelPDFRendersAgainWhenTheFileIsGone(t *testing.T) {
	app := testkit.NewApp(t)
	addProduct(t, app, "PR-BEEF-500", nil)
	deps := testDeps(t0)
	res, err := batches.Create(app, batches.Input{ProductSKU: "PR-BEEF-500", ProducedAt: t0, Units: intp(10)}, deps)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := batches.ReadLabelPDF(app, res.Batch, deps)
	if err != nil || string(stored) != string(res.LabelPDF) {
		t.Fatalf("stored label: %v", err)
	}
	for _, f := range storedFiles(t, app) {
		os.Remove(f)
	}
	again, err := batches.ReadLabelPDF(app, res.Batch, deps)
	if err != nil {
		t.Fatal(err)
	}
	if got := pdfQR(t, again); got != res.ProofURL {
		t.Errorf("rendered again, the QR code opens %q, want %q", got, res.ProofURL)
	}
	text := strings.Join(strings.Fields(pdfText(t, again)), " ")
	for _, w := range []string{"B-261121-001", "Produced 21 Nov 2026", "Use by 20 May 2027"} {
		if !strings.Contains(text, w) {
			t.Errorf("rendered again, the label lacks %q: %s", w, text)
		}
	}
}
