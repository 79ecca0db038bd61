package hooks_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/testkit"
)

// Staff create a batch over the API: it is held for QA with a code of the business
// day, its label (served as a PDF) scans to its proof page and reads back product,
// code, dates and storage, and the co-packer's email with that label is queued once.
func TestCreateBatchOverTheOpsApi(t *testing.T) {
	s := startBatches(t, nil)
	batchProduct(t, s.App, "PR-BEEF-500")
	operator := testkit.Token(t, s.App, "operator")

	code, body := s.Call(t, "POST", "/api/ops/batches", operator,
		`{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "kg_produced": 500, "notes": "Line 2"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	b := batchDecode[createdBatch](t, body)
	if b.Code != "B-261120-001" || b.Status != "qa_hold" || b.Units != 1000 || b.Kg != 500 ||
		b.ProducedOn != "2026-11-20" || b.UseBy != "2027-05-19" || b.Product.SKU != "PR-BEEF-500" ||
		!strings.HasPrefix(b.CreatedBy, "staff:") || len(b.PublicID) != 20 || b.ProofURL != batchPublicURL+"/proof/"+b.PublicID ||
		b.Email == nil || b.Email.To != batchCopacker {
		t.Errorf("answer %s", body)
	}

	status, ctype, pdf := batchGet(t, s, b.Links.LabelPDF, operator)
	if status != http.StatusOK || ctype != "application/pdf" {
		t.Fatalf("label: %d %s %.200s", status, ctype, pdf)
	}
	if got := batchQRFromPDF(t, pdf); got != b.ProofURL {
		t.Errorf("the label's QR code opens %q, want %q", got, b.ProofURL)
	}
	text := batchPDFText(t, pdf)
	for _, want := range []string{"Beef Complete", "B-261120-001", "Produced 20 Nov 2026", "Use by 19 May 2027", "Store between -25°C and -18°C"} {
		if !strings.Contains(text, want) {
			t.Errorf("label lacks %q: %s", want, text)
		}
	}
	if status, _, png := batchGet(t, s, b.Links.QRImage, operator); status != http.StatusOK || batchQRFromPNG(t, png) != b.ProofURL {
		t.Errorf("QR image: %d", status)
	}
	// by code too
	if status, _, byCode := batchGet(t, s, "/api/ops/batches/B-261120-001/label.pdf", operator); status != http.StatusOK || string(byCode) != string(pdf) {
		t.Errorf("label by code: %d", status)
	}

	p := dbx.Params{"id": b.ID}
	if n := testkit.Count(t, s.App, "batch_status_history", "batch = {:id} AND from_status = '' AND to_status = 'qa_hold' AND reason = 'created'", p); n != 1 {
		t.Errorf("%d creation history rows, want 1", n)
	}
	if n := testkit.Count(t, s.App, "ops_events", "entity_id = {:id} AND kind = 'batch.created'", p); n != 1 {
		t.Errorf("%d batch.created events, want 1", n)
	}
	assertCopackerEmail(t, s, b.ID, b.Code, pdf)
}

// assertCopackerEmail checks that exactly one email is queued for the batch, to the
// co-packer, with its label attached byte for byte.
func assertCopackerEmail(t *testing.T, s *testkit.Server, batchID, code string, label []byte) {
	t.Helper()
	p := dbx.Params{"key": "copacker_label:" + batchID}
	if n := testkit.Count(t, s.App, "email_outbox", "idempotency_key = {:key}", p); n != 1 {
		t.Fatalf("%d co-packer emails for batch %s, want 1", n, code)
	}
	rec, err := s.App.FindFirstRecordByData("email_outbox", "idempotency_key", "copacker_label:"+batchID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.GetString("to") != batchCopacker || rec.GetString("state") != "pending" || rec.GetString("subject") != "New batch label for "+code {
		t.Errorf("email to %q, state %q, subject %q", rec.GetString("to"), rec.GetString("state"), rec.GetString("subject"))
	}
	var meta []struct {
		Name        string `json:"name"`
		ContentType string `json:"content_type"`
	}
	json.Unmarshal([]byte(rec.GetString("attachment_meta")), &meta)
	files := rec.GetStringSlice("attachments")
	if len(files) != 1 || len(meta) != 1 || meta[0].Name != code+"-label.pdf" || meta[0].ContentType != "application/pdf" {
		t.Fatalf("attachments %v %s", files, rec.GetString("attachment_meta"))
	}
	fsys, err := s.App.NewFilesystem()
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	r, err := fsys.GetReader(rec.BaseFilesPath() + "/" + files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var attached strings.Builder
	fmt.Fprint(&attached, "")
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		attached.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if attached.String() != string(label) {
		t.Error("the attached PDF is not the batch's label")
	}
}

func TestBatchRoutesNeedStaff(t *testing.T) {
	s := startBatches(t, nil)
	batchProduct(t, s.App, "PR-BEEF-500")
	_, inactive := testkit.Staff(t, s.App, "admin", false)
	body := `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "units": 10}`
	var id string
	for _, role := range []string{"operator", "manager", "admin", "superuser"} {
		code, out := s.Call(t, "POST", "/api/ops/batches", testkit.Token(t, s.App, role), body)
		if code != http.StatusCreated {
			t.Errorf("%s creates: %d %s", role, code, out)
		}
		id = batchDecode[createdBatch](t, out).ID
	}
	cases := []struct {
		name, method, path, token string
		want                      int
	}{
		{"anonymous create", "POST", "/api/ops/batches", "", 401},
		{"inactive staff create", "POST", "/api/ops/batches", inactive, 403},
		{"anonymous label", "GET", "/api/ops/batches/" + id + "/label.pdf", "", 401},
		{"inactive staff label", "GET", "/api/ops/batches/" + id + "/label.pdf", inactive, 403},
		{"operator label", "GET", "/api/ops/batches/" + id + "/label.pdf", testkit.Token(t, s.App, "operator"), 200},
		{"unknown batch", "GET", "/api/ops/batches/nosuchbatch0000/label.pdf", testkit.Token(t, s.App, "operator"), 404},
	}
	before := batchWrites(t, s.App)
	for _, c := range cases {
		if code, out := s.Call(t, c.method, c.path, c.token, body); code != c.want {
			t.Errorf("%s: %d %.200s, want %d", c.name, code, out, c.want)
		}
	}
	if after := batchWrites(t, s.App); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused requests wrote: %v → %v", before, after)
	}
}

// Every rejected request answers 400 with a message saying what to send, names the
// field, and writes nothing.
func TestCreateBatchRefusesBadRequestsAndWritesNothing(t *testing.T) {
	s := startBatches(t, nil)
	batchProduct(t, s.App, "PR-BEEF-500")
	col, _ := s.App.FindCollectionByNameOrId("products")
	if err := s.App.Save(newRecord(col, map[string]any{"sku": "NO-SHELF-LIFE", "name": "Mystery", "kg_per_unit": 1})); err != nil {
		t.Fatal(err)
	}
	token := testkit.Token(t, s.App, "operator")
	cases := []struct {
		name, body, field, want string
	}{
		{"empty body", ``, "", "The body is empty"},
		{"not JSON", `product_sku=PR-BEEF-500`, "", "not valid JSON"},
		{"unknown field", `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "unit": 5}`, "", `Unknown field "unit"`},
		{"wrong type", `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "units": "ten"}`, "", "wrong type"},
		{"unknown SKU", `{"product_sku": "PR-NOPE", "produced_at": "2026-11-20", "units": 10}`, "product_sku", `No product with SKU "PR-NOPE"`},
		{"no SKU", `{"produced_at": "2026-11-20", "units": 10}`, "product_sku", "Give product_sku"},
		{"units and kg", `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "units": 10, "kg_produced": 5}`, "units", "not both"},
		{"no quantity", `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20"}`, "units", "Give the quantity produced"},
		{"fractional units", `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "units": 2.5}`, "units", "whole number"},
		{"kg not whole units", `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "kg_produced": 500.2}`, "kg_produced", "500 kg (1000 pouches) or 500.5 kg (1001 pouches)"},
		{"no date", `{"product_sku": "PR-BEEF-500", "units": 10}`, "produced_at", "Give produced_at"},
		{"bad date", `{"product_sku": "PR-BEEF-500", "produced_at": "20/11/2026", "units": 10}`, "produced_at", "is not a date (2026-11-21)"},
		{"tomorrow", `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-21", "units": 10}`, "produced_at", "after today"},
		{"later today", `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20T15:00:00Z", "units": 10}`, "produced_at", "in the future"},
		{"expiry before production", `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "expiry_date": "2026-11-19", "units": 10}`, "expiry_date", "before the production day"},
		{"no shelf life", `{"product_sku": "NO-SHELF-LIFE", "produced_at": "2026-11-20", "units": 10}`, "expiry_date", "no shelf life"},
	}
	before := batchWrites(t, s.App)
	for _, c := range cases {
		code, out := s.Call(t, "POST", "/api/ops/batches", token, c.body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", c.name, code, out)
			continue
		}
		e := batchDecode[batchAPIError](t, out)
		if !strings.Contains(e.Message, c.want) {
			t.Errorf("%s: message %q, want %q", c.name, e.Message, c.want)
		}
		if c.field != "" && !strings.Contains(e.Data[c.field].Message, c.want) {
			t.Errorf("%s: field errors %s, want %s", c.name, out, c.field)
		}
	}
	if after := batchWrites(t, s.App); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("rejected requests wrote: %v → %v", before, after)
	}
	if n := testkit.Count(t, s.App, "email_outbox", "", nil); n != 0 {
		t.Errorf("%d emails queued by rejected requests", n)
	}
}

// Twenty staff creating batches for the same day at once get twenty distinct,
// consecutive codes, each with its own email.
func TestConcurrentBatchCreationsGetConsecutiveCodes(t *testing.T) {
	s := startBatches(t, nil)
	batchProduct(t, s.App, "PR-BEEF-500")
	token := testkit.Token(t, s.App, "operator")
	const n = 20
	var wg sync.WaitGroup
	codes := make([]string, n)
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20T0%d:%02d:00Z", "units": %d}`, i%9, i, 10+i)
			req, _ := http.NewRequest("POST", s.URL+"/api/ops/batches", strings.NewReader(body))
			req.Header.Set("Authorization", token)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer res.Body.Close()
			var b createdBatch
			json.NewDecoder(res.Body).Decode(&b)
			if res.StatusCode != http.StatusCreated {
				errs <- fmt.Sprintf("status %d", res.StatusCode)
			}
			codes[i] = b.Code
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	sort.Strings(codes)
	for i, c := range codes {
		if want := fmt.Sprintf("B-261120-%03d", i+1); c != want {
			t.Fatalf("codes %v: position %d is %s, want %s", codes, i, c, want)
		}
	}
	if got := testkit.Count(t, s.App, "email_outbox", "", nil); got != n {
		t.Errorf("%d co-packer emails, want %d", got, n)
	}
	if got := testkit.Count(t, s.App, "batches", "", nil); got != n {
		t.Errorf("%d batches, want %d", got, n)
	}
}
