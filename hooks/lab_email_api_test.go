package hooks_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/opspine/opspine/app/labmail"
	"github.com/opspine/opspine/app/testkit"
)

// secondLabReport is a report in a format the built-in pattern reads poorly.
func secondLabReport(t *testing.T, code string) []byte {
	return labReportPDF(t, []string{"MICROLAB SERVICES LTD"}, []string{"Client sample", "LOT/" + code},
		[]string{"Salm. spp", "Neg/25g"}, []string{"L. mono", "Neg/25g"}, []string{"EB (log cfu/g)", "2.0"})
}

func runLabPoll(t *testing.T, s *testkit.Server) string {
	t.Helper()
	run, err := s.Spine.Scheduler.RunNow(labmail.PollJobName, "manual")
	if err != nil {
		t.Fatalf("run lab-email-poll: %v", err)
	}
	if run.Outcome != "ok" {
		t.Fatalf("lab-email-poll: %s %s", run.Outcome, run.Error)
	}
	return run.Summary
}

func quarantined(t *testing.T, s *testkit.Server, token string) []map[string]any {
	t.Helper()
	code, body := s.Call(t, "GET", "/api/collections/lab_emails/records?filter="+`(state%3D"quarantined")`, token, "")
	if code != 200 {
		t.Fatalf("list lab_emails: %d %s", code, body)
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// TestLabEmailPollJobIsScheduledOnlyWhenConfigured: without OPSPINE_LAB_IMAP_ADDR there
// is no lab-email-poll job; with it the job runs every OPSPINE_LAB_IMAP_INTERVAL.
func TestLabEmailPollJobIsScheduledOnlyWhenConfigured(t *testing.T) {
	off := start(t, nil)
	if _, err := off.Spine.Scheduler.RunNow(labmail.PollJobName, "manual"); err == nil {
		t.Error("lab-email-poll is registered without OPSPINE_LAB_IMAP_ADDR")
	}
	on, _ := startWithLabMailbox(t)
	list, err := on.Spine.Scheduler.List()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, j := range list {
		b, _ := json.Marshal(j)
		if strings.Contains(string(b), `"`+labmail.PollJobName+`"`) {
			found = true
			if !strings.Contains(string(b), "*/5 * * * *") {
				t.Errorf("lab-email-poll schedule: %s", b)
			}
		}
	}
	if !found {
		t.Error("lab-email-poll is not listed")
	}
}

// TestLabEmailQuarantineReprocessAfterPatternFix walks the staff path: a second lab's
// report is quarantined with its reason (listed in the admin UI's collection), staff
// add the lab's pattern there (a broken regular expression is refused), reprocess,
// and the batch is released from the email's PDF.
func TestLabEmailQuarantineReprocessAfterPatternFix(t *testing.T) {
	s, addr := startWithLabMailbox(t)
	batch := labBatch(t, s, "B-261117-010")
	_, operator := testkit.Staff(t, s.App, "operator", true)
	admin := testkit.Token(t, s.App, "superuser")
	deliverLabEmail(t, addr, "Microlab <reports@microlab.example>", secondLabReport(t, "B-261117-010"))
	runLabPoll(t, s)

	items := quarantined(t, s, operator)
	if len(items) != 1 || !strings.Contains(items[0]["reason"].(string), "no test result found") {
		t.Fatalf("quarantined emails seen by staff: %v", items)
	}
	id := items[0]["id"].(string)

	bad := `{"lab_name":"Microlab","sender_match":"@microlab.example","salmonella_pattern":"(?i)^salm[","active":true}`
	if code, body := s.Call(t, "POST", "/api/collections/lab_pdf_patterns/records", admin, bad); code != 400 || !strings.Contains(string(body), "salmonella_pattern") {
		t.Errorf("broken pattern: %d %s", code, body)
	}
	good := `{"lab_name":"Microlab","sender_match":"@microlab.example","batch_code_regex":"LOT/([A-Z0-9]+-\\d{6}-\\d{3})",` +
		`"salmonella_pattern":"(?i)^salm\\.? spp","listeria_pattern":"(?i)^l\\. ?mono","enterobacteriaceae_pattern":"(?i)^EB\\b","unit":"log10_cfu_per_g","active":true}`
	if code, body := s.Call(t, "POST", "/api/collections/lab_pdf_patterns/records", admin, good); code != 200 {
		t.Fatalf("add pattern: %d %s", code, body)
	}

	if code, _ := s.Call(t, "POST", "/api/ops/lab-emails/"+id+"/reprocess", "", ""); code != 401 {
		t.Errorf("reprocess without auth: %d", code)
	}
	code, body := s.Call(t, "POST", "/api/ops/lab-emails/"+id+"/reprocess", operator, "")
	if code != 200 {
		t.Fatalf("reprocess: %d %s", code, body)
	}
	var out labmail.Outcome
	_ = json.Unmarshal(body, &out)
	if out.State != labmail.StateProcessed || out.BatchID != batch || out.BatchStatus != "released" || out.LabResultID == "" {
		t.Errorf("reprocess answer: %s", body)
	}
	if testkit.Count(t, s.App, "lab_results", "batch = {:b} AND source = 'email' AND lab = 'Microlab' AND enterobacteriaceae_cfu_per_g = 100", map[string]any{"b": batch}) != 1 {
		t.Error("no lab result from the reprocessed email")
	}
	if testkit.Count(t, s.App, "alerts", "dedupe_key = {:k} AND state = 'open'", map[string]any{"k": "lab-email-quarantined:" + id}) != 0 {
		t.Error("the quarantine alert is still open after reprocessing")
	}
	if code, body := s.Call(t, "PATCH", "/api/collections/lab_emails/records/"+id, admin, `{"state":"quarantined"}`); code != 400 || !strings.Contains(string(body), "reprocess") {
		t.Errorf("hand edit of a lab email: %d %s", code, body)
	}
	if code, _ := s.Call(t, "POST", "/api/ops/lab-emails/nope/reprocess", operator, ""); code != 404 {
		t.Errorf("unknown email: %d", code)
	}
}

// TestLabEmailAttachByHand: an email without a batch code is attached to the batch staff
// name; a missing batch_id, an unknown batch, and a PDF without text fail clearly.
func TestLabEmailAttachByHand(t *testing.T) {
	s, addr := startWithLabMailbox(t)
	batch := labBatch(t, s, "B-261117-020")
	_, operator := testkit.Staff(t, s.App, "operator", true)
	deliverLabEmail(t, addr, "Lab <lab@foodlab.example>", labReportPDF(t, []string{"Sample: beef mince"},
		[]string{"Salmonella spp.", "Not Detected in 25g"}, []string{"Listeria monocytogenes", "Absent"}, []string{"Enterobacteriaceae", "1.2 x 10^2 cfu/g"}))
	runLabPoll(t, s)
	items := quarantined(t, s, operator)
	if len(items) != 1 || !strings.Contains(items[0]["reason"].(string), "no batch code found") {
		t.Fatalf("quarantined: %v", items)
	}
	id := items[0]["id"].(string)
	for _, tc := range []struct {
		body string
		want int
		says string
	}{
		{``, http.StatusBadRequest, "atch_id is required"},
		{`{"batch_id":"nosuchbatch"}`, http.StatusUnprocessableEntity, "o batch with id"},
	} {
		code, body := s.Call(t, "POST", "/api/ops/lab-emails/"+id+"/attach", operator, tc.body)
		if code != tc.want || !strings.Contains(string(body), tc.says) {
			t.Errorf("attach %q: %d %s, want %d %q", tc.body, code, body, tc.want, tc.says)
		}
	}
	code, body := s.Call(t, "POST", "/api/ops/lab-emails/"+id+"/attach", operator, `{"batch_id":"`+batch+`"}`)
	if code != 200 || !strings.Contains(string(body), `"batch_status":"released"`) {
		t.Fatalf("attach: %d %s", code, body)
	}
	if testkit.Count(t, s.App, "lab_results", "batch = {:b} AND enterobacteriaceae_cfu_per_g = 120 AND entered_by LIKE 'staff:%'", map[string]any{"b": batch}) != 1 {
		t.Error("no lab result entered by the staff member")
	}
}
