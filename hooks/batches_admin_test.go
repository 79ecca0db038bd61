package hooks_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/testkit"
)

// adminRecord is a batches record as the collection API answers it.
type adminRecord struct {
	ID         string  `json:"id"`
	Code       string  `json:"code"`
	Product    string  `json:"product"`
	Status     string  `json:"status"`
	PublicID   string  `json:"public_id"`
	Units      int     `json:"quantity_units"`
	Kg         float64 `json:"kg_produced"`
	ProducedAt string  `json:"produced_at"`
	Expiry     string  `json:"expiry_date"`
	QRImage    string  `json:"qr_image"`
	LabelPDF   string  `json:"label_pdf"`
	QAHoldAt   string  `json:"qa_hold_at"`
	Notes      string  `json:"notes"`
	CreatedBy  string  `json:"created_by"`
}

// Creating a batch in the admin UI (the collection API, multipart as the UI sends it)
// runs the same creation as POST /api/ops/batches: what staff type into derived
// fields is not taken, and the batch gets the code, public id, QR, label, history,
// ops event and co-packer email the API would give it.
func TestAdminUICreatesABatchLikeTheOpsApi(t *testing.T) {
	s := startBatches(t, nil)
	product := batchProduct(t, s.App, "PR-BEEF-500")
	superuser := testkit.Token(t, s.App, "superuser")

	code, body := batchMultipart(t, s, "/api/collections/batches/records", superuser, map[string]string{
		"product": product, "produced_at": "2026-11-20 07:30:00.000Z", "kg_produced": "500", "quantity_units": "0",
		"notes": "From the admin UI", "status": "qa_hold",
		// typed by hand into fields opspine derives: ignored
		"code": "MY-OWN-CODE", "public_id": "guessable", "qa_hold_at": "2020-01-01 00:00:00.000Z", "created_by": "someone else",
	})
	if code != http.StatusOK {
		t.Fatalf("admin UI create: %d %s", code, body)
	}
	r := batchDecode[adminRecord](t, body)
	if r.Code != "B-261120-001" || r.Status != "qa_hold" || r.Units != 1000 || r.Kg != 500 || r.Product != product ||
		r.ProducedAt != "2026-11-20 07:30:00.000Z" || r.Expiry != "2027-05-19 11:00:00.000Z" || r.QAHoldAt != "2026-11-20 09:00:00.000Z" ||
		r.Notes != "From the admin UI" || !strings.HasPrefix(r.CreatedBy, "superuser:") || len(r.PublicID) != 20 ||
		r.QRImage == "" || r.LabelPDF == "" {
		t.Errorf("record %s", body)
	}
	status, _, pdf := batchGet(t, s, "/api/ops/batches/"+r.ID+"/label.pdf", superuser)
	if status != http.StatusOK {
		t.Fatalf("label: %d", status)
	}
	if got := batchQRFromPDF(t, pdf); got != batchPublicURL+"/proof/"+r.PublicID {
		t.Errorf("label QR opens %q", got)
	}
	if text := batchPDFText(t, pdf); !strings.Contains(text, "B-261120-001") || !strings.Contains(text, "Use by 19 May 2027") {
		t.Errorf("label text %s", text)
	}
	p := dbx.Params{"id": r.ID}
	if n := testkit.Count(t, s.App, "batch_status_history", "batch = {:id} AND to_status = 'qa_hold' AND reason = 'created'", p); n != 1 {
		t.Errorf("%d history rows", n)
	}
	if n := testkit.Count(t, s.App, "ops_events", "entity_id = {:id} AND kind = 'batch.created'", p); n != 1 {
		t.Errorf("%d ops events", n)
	}
	assertCopackerEmail(t, s, r.ID, r.Code, pdf)

	// staff use the same path (JSON, units), and the API's next batch that day follows on
	operator := testkit.Token(t, s.App, "operator")
	code, body = s.Call(t, "POST", "/api/collections/batches/records", operator,
		fmt.Sprintf(`{"product": %q, "produced_at": "2026-11-20 08:00:00.000Z", "quantity_units": 40}`, product))
	if code != http.StatusOK {
		t.Fatalf("staff create: %d %s", code, body)
	}
	if r2 := batchDecode[adminRecord](t, body); r2.Code != "B-261120-002" || r2.Units != 40 || r2.Kg != 20 || !strings.HasPrefix(r2.CreatedBy, "staff:") {
		t.Errorf("staff-created record %s", body)
	}
	code, body = s.Call(t, "POST", "/api/ops/batches", operator, `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "units": 1}`)
	if code != http.StatusCreated || batchDecode[createdBatch](t, body).Code != "B-261120-003" {
		t.Errorf("API after the admin UI: %d %s", code, body)
	}
}

// A rejected admin UI create answers 400 with the error on the collection's field, so
// the UI shows it beside the field, and writes nothing.
func TestAdminUICreateShowsErrorsOnTheFieldAndWritesNothing(t *testing.T) {
	s := startBatches(t, nil)
	product := batchProduct(t, s.App, "PR-BEEF-500")
	superuser := testkit.Token(t, s.App, "superuser")
	cases := []struct {
		name   string
		fields map[string]string
		field  string
		want   string
	}{
		{"no quantity", map[string]string{"product": product, "produced_at": "2026-11-20 07:00:00.000Z"}, "quantity_units", "Give the quantity produced"},
		{"kg not whole units", map[string]string{"product": product, "produced_at": "2026-11-20 07:00:00.000Z", "kg_produced": "10.2"}, "kg_produced", "nearest counts"},
		{"released from the start", map[string]string{"product": product, "produced_at": "2026-11-20 07:00:00.000Z", "quantity_units": "5", "status": "released"}, "status", "starts on QA hold"},
		{"no product", map[string]string{"produced_at": "2026-11-20 07:00:00.000Z", "quantity_units": "5"}, "product", ""},
		{"produced tomorrow", map[string]string{"product": product, "produced_at": "2026-11-21 07:00:00.000Z", "quantity_units": "5"}, "produced_at", "in the future"},
	}
	before := batchWrites(t, s.App)
	for _, c := range cases {
		code, body := batchMultipart(t, s, "/api/collections/batches/records", superuser, c.fields)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", c.name, code, body)
			continue
		}
		e := batchDecode[batchAPIError](t, body)
		if _, ok := e.Data[c.field]; !ok || !strings.Contains(e.Data[c.field].Message, c.want) {
			t.Errorf("%s: %s, want an error on %s saying %q", c.name, body, c.field, c.want)
		}
	}
	if after := batchWrites(t, s.App); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("rejected creates wrote: %v → %v", before, after)
	}
}
