package hooks_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/testkit"
)

// The admin UI creates records through PocketBase's records API; these tests go the same way.

func TestALabResultCreatedInTheAdminUIAppliesTheReleaseRule(t *testing.T) {
	s := start(t, nil)
	superuser := testkit.Token(t, s.App, "superuser")
	_, operator := testkit.Staff(t, s.App, "operator", true)
	const path = "/api/collections/lab_results/records"
	pdf := labPDF("admin")

	pass := labBatch(t, s, "B-261120-001")
	code, body := labMultipart(t, s, path, superuser, map[string]string{
		"batch": pass, "lab": "Eurofins", "salmonella": "absent", "listeria": "",
		"enterobacteriaceae_tested": "true", "enterobacteriaceae_cfu_per_g": "0", "other_tests": "",
	}, labFile{"report_pdf", "report.pdf", pdf})
	if code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	var rec struct {
		ID            string `json:"id"`
		Outcome       string `json:"outcome"`
		OutcomeReason string `json:"outcome_reason"`
		EnteredBy     string `json:"entered_by"`
		Source        string `json:"source"`
		PDFSHA256     string `json:"pdf_sha256"`
	}
	json.Unmarshal(body, &rec)
	if rec.Outcome != "pass" || !strings.HasPrefix(rec.OutcomeReason, "Pass:") || !strings.HasPrefix(rec.EnteredBy, "superuser:") ||
		rec.Source != "manual" || rec.PDFSHA256 != batches.SHA256Hex(pdf) {
		t.Errorf("answer %s", body)
	}
	if got := batchStatus(t, s, pass); got != "released" {
		t.Errorf("batch is %s", got)
	}
	if n := testkit.Count(t, s.App, "batch_status_history", "batch = {:b} AND lab_result = {:l}", dbx.Params{"b": pass, "l": rec.ID}); n != 1 {
		t.Errorf("%d history rows naming the result", n)
	}

	// staff use the same path; a count above the limit fails the batch and alerts
	fail := labBatch(t, s, "B-261120-002")
	code, body = labMultipart(t, s, path, operator, map[string]string{
		"batch": fail, "lab": "Eurofins", "salmonella": "absent", "enterobacteriaceae_cfu_per_g": "301",
	})
	if code != 200 || !strings.Contains(string(body), `"outcome":"fail"`) {
		t.Fatalf("staff create: %d %s", code, body)
	}
	if got := batchStatus(t, s, fail); got != "failed" {
		t.Errorf("batch is %s", got)
	}
	if n := testkit.Count(t, s.App, "alerts", "dedupe_key = {:k}", dbx.Params{"k": "batch-lab-failed:" + fail}); n != 1 {
		t.Errorf("%d alerts", n)
	}

	// derived fields given by hand are refused and nothing is written
	hold := labBatch(t, s, "B-261120-003")
	before := writesOfBatch(t, s.App, hold)
	for _, field := range []string{"outcome", "outcome_reason", "entered_by", "pdf_sha256"} {
		values := map[string]string{"batch": hold, "lab": "L", "salmonella": "absent", "enterobacteriaceae_cfu_per_g": "1", field: "pass"}
		code, body := labMultipart(t, s, path, superuser, values)
		if code != 400 || !strings.Contains(string(body), "lab_results."+field+" is set by opspine") {
			t.Errorf("hand %s: %d %s", field, code, body)
		}
	}
	if code, body := labMultipart(t, s, path, superuser, map[string]string{"batch": hold, "lab": "L", "other_tests": `{"x":1}`}); code != 400 {
		t.Errorf("other_tests not a list: %d %s", code, body)
	}
	if code, body := labMultipart(t, s, path, superuser, map[string]string{"batch": hold, "lab": "L"},
		labFile{"report_pdf", "r.pdf", []byte("%PDX not quite")}); code != 400 {
		t.Errorf("report that is not a PDF: %d %s", code, body)
	}
	if after := writesOfBatch(t, s.App, hold); !equalCounts(before, after) {
		t.Errorf("refused creates wrote: before %v after %v", before, after)
	}
}

func TestAnOverrideCreatedInTheAdminUIIsTheOverrideAction(t *testing.T) {
	s := start(t, nil)
	superuser := testkit.Token(t, s.App, "superuser")
	requester, _ := testkit.Staff(t, s.App, "operator", true)
	approver, _ := testkit.Staff(t, s.App, "admin", true)
	batch := labBatch(t, s, "B-261120-010")
	const path = "/api/collections/manual_override_audit/records"
	evidence := labFile{"evidence_pdf", "evidence.pdf", labPDF("admin-evidence")}
	fields := map[string]string{"batch": batch, "to_status": "failed", "requester": requester, "approver": requester,
		"justification": justification, "batch_code": "ignored", "from_status": "ignored"}

	before := writesOfBatch(t, s.App, batch)
	if code, body := labMultipart(t, s, path, superuser, fields, evidence); code != 400 || !strings.Contains(string(body), "different person") {
		t.Errorf("same person: %d %s", code, body)
	}
	if after := writesOfBatch(t, s.App, batch); !equalCounts(before, after) {
		t.Errorf("refused override wrote: before %v after %v", before, after)
	}
	fields["approver"] = approver
	code, body := labMultipart(t, s, path, superuser, fields, evidence)
	if code != 200 || !strings.Contains(string(body), `"batch_code":"B-261120-010"`) || !strings.Contains(string(body), `"from_status":"qa_hold"`) {
		t.Fatalf("override: %d %s", code, body)
	}
	if got := batchStatus(t, s, batch); got != "failed" {
		t.Errorf("batch is %s", got)
	}
	if w := writesOfBatch(t, s.App, batch); w["overrides"] != 1 || w["history"] != 1 {
		t.Errorf("writes %v", w)
	}
}
