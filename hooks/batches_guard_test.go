package hooks_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/opspine/opspine/app/testkit"
)

// Staff may edit a batch's notes; every field opspine derives is refused with a
// message that says what to do instead, and the batch is left as it was.
func TestBatchHandEditsOfDerivedFieldsAreRefused(t *testing.T) {
	s := startBatches(t, nil)
	batchProduct(t, s.App, "PR-BEEF-500")
	other := batchProduct(t, s.App, "PR-LAMB-500")
	superuser := testkit.Token(t, s.App, "superuser")
	code, body := s.Call(t, "POST", "/api/ops/batches", superuser, `{"product_sku": "PR-BEEF-500", "produced_at": "2026-11-20", "units": 10}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	id := batchDecode[createdBatch](t, body).ID
	path := "/api/collections/batches/records/" + id
	for _, edit := range []string{
		`{"code": "B-261120-999"}`, `{"public_id": "guessable000000000000"}`, `{"status": "released"}`,
		`{"qa_hold_at": "2020-01-01 00:00:00.000Z"}`, `{"released_at": "2026-11-20 10:00:00.000Z"}`,
		`{"created_by": "someone"}`, `{"expiry_date": "2030-01-01 12:00:00.000Z"}`, `{"quantity_units": 11}`,
		`{"kg_produced": 6}`, `{"produced_at": "2026-11-19 12:00:00.000Z"}`, fmt.Sprintf(`{"product": %q}`, other),
		`{"qr_image": null}`, `{"label_pdf": null}`,
	} {
		code, out := s.Call(t, "PATCH", path, superuser, edit)
		if code != http.StatusBadRequest || !strings.Contains(string(out), "only notes can be edited") {
			t.Errorf("edit %s: %d %s, want 400", edit, code, out)
		}
	}
	code, out := s.Call(t, "PATCH", path, testkit.Token(t, s.App, "operator"), `{"notes": "Pallet 3 short by 2 pouches"}`)
	if code != http.StatusOK || !strings.Contains(string(out), "Pallet 3") {
		t.Errorf("notes: %d %s", code, out)
	}
	rec, _ := s.App.FindRecordById("batches", id)
	if rec.GetString("code") != "B-261120-001" || rec.GetString("status") != "qa_hold" || rec.GetInt("quantity_units") != 10 ||
		rec.GetString("qr_image") == "" || rec.GetString("label_pdf") == "" {
		t.Errorf("the batch changed: %v", rec)
	}
}
