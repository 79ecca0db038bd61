package hooks_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/testkit"
)

func TestLabResultsWalkABatchFromHoldToReleased(t *testing.T) {
	s := start(t, nil)
	operatorID, operator := testkit.Staff(t, s.App, "operator", true)
	batch := labBatch(t, s, "B-261117-001")
	pdf := labPDF("walk")

	code, body := labMultipart(t, s, "/api/ops/batches/"+batch+"/lab-results", operator, map[string]string{
		"lab": "Eurofins Wolverhampton", "salmonella": "absent", "listeria": "absent",
		"enterobacteriaceae_cfu_per_g": "120", "reported_at": "2026-11-19",
		"other_tests": `[{"name":"E. coli","result":"<10","unit":"cfu/g","limit":"5000","pass":true}]`,
	}, labFile{"report_pdf", "report.pdf", pdf})
	if code != 201 {
		t.Fatalf("record: %d %s", code, body)
	}
	a := decodeLab(t, body)
	if a.Outcome != "pass" || a.LabResult.Outcome != "pass" || a.Batch.Status != "released" || a.Batch.PreviousStatus != "qa_hold" || !a.Batch.StatusChanged {
		t.Fatalf("answer: %s", body)
	}
	if !strings.Contains(a.OutcomeReason, "Salmonella absent") || !strings.Contains(a.OutcomeReason, "120 cfu/g (limit 300 cfu/g)") {
		t.Errorf("outcome_reason %q does not say what passed", a.OutcomeReason)
	}
	if a.LabResult.PDFSHA256 != batches.SHA256Hex(pdf) || a.LabResult.ReportPDF == "" {
		t.Errorf("report PDF not stored with its hash: %s", body)
	}
	if a.LabResult.EnteredBy != "staff:"+operatorID || a.LabResult.Source != "manual" || a.LabResult.Confidence != 1 {
		t.Errorf("derived fields: %s", body)
	}
	rec, _ := s.App.FindRecordById("batches", batch)
	if rec.GetString("status") != "released" || !rec.GetDateTime("released_at").Time().Equal(t0) {
		t.Errorf("batch: status %s released_at %v", rec.GetString("status"), rec.GetDateTime("released_at"))
	}
	var h struct {
		From   string `db:"from_status"`
		To     string `db:"to_status"`
		Actor  string `db:"actor"`
		Lab    string `db:"lab_result"`
		Reason string `db:"reason"`
	}
	if err := s.App.DB().NewQuery(`SELECT from_status, to_status, actor, lab_result, reason FROM batch_status_history WHERE batch = {:b}`).
		Bind(dbx.Params{"b": batch}).One(&h); err != nil {
		t.Fatal(err)
	}
	if h.From != "qa_hold" || h.To != "released" || h.Actor != "staff:"+operatorID || h.Lab != a.LabResult.ID || !strings.Contains(h.Reason, "Eurofins") {
		t.Errorf("history row: %+v", h)
	}
	if n := testkit.Count(t, s.App, "ops_events", "entity_type = 'batch' AND entity_id = {:b} AND kind = 'batch.released'", dbx.Params{"b": batch}); n != 1 {
		t.Errorf("%d batch.released ops events, want 1", n)
	}
	if n := testkit.Count(t, s.App, "alerts", "", nil); n != 0 {
		t.Errorf("%d alerts for a pass", n)
	}
}

func TestAFailingLabResultFailsTheBatchAndRaisesOneCriticalAlert(t *testing.T) {
	cases := []struct {
		name, body, because string
	}{
		{"salmonella detected", `{"lab":"Lab A","salmonella":"detected","enterobacteriaceae_cfu_per_g":10}`, "Salmonella detected"},
		{"enterobacteriaceae 301", `{"lab":"Lab A","salmonella":"absent","enterobacteriaceae_cfu_per_g":301}`, "301 cfu/g is above the limit of 300"},
		{"listeria detected", `{"lab":"Lab A","salmonella":"absent","listeria":"detected","enterobacteriaceae_cfu_per_g":5}`, "Listeria monocytogenes detected"},
		{"failed other test", `{"lab":"Lab A","salmonella":"absent","enterobacteriaceae_cfu_per_g":5,"other_tests":[{"name":"Clostridium","result":900,"limit":100,"pass":false}]}`, "Clostridium failed"},
		{"fails before all tests are in", `{"lab":"Lab A","salmonella":"detected"}`, "Salmonella detected"},
	}
	s := start(t, nil)
	token := testkit.Token(t, s.App, "operator")
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code := fmt.Sprintf("B-261117-1%02d", i)
			batch := labBatch(t, s, code)
			a := postLabJSON(t, s, batch, token, c.body, 201)
			if a.Outcome != "fail" || a.Batch.Status != "failed" || !strings.Contains(a.OutcomeReason, c.because) {
				t.Fatalf("answer %+v", a)
			}
			if got := batchStatus(t, s, batch); got != "failed" {
				t.Fatalf("batch is %s", got)
			}
			var al struct {
				Severity string `db:"severity"`
				Title    string `db:"title"`
				Key      string `db:"dedupe_key"`
				State    string `db:"state"`
			}
			err := s.App.DB().NewQuery(`SELECT severity, title, dedupe_key, state FROM alerts WHERE dedupe_key = {:key}`).
				Bind(dbx.Params{"key": "batch-lab-failed:" + batch}).One(&al)
			if err != nil {
				t.Fatalf("no alert: %v", err)
			}
			if al.Severity != "critical" || al.State != "open" || !strings.Contains(al.Title, code) {
				t.Errorf("alert %+v", al)
			}
			// a second failing report for the same batch updates the alert, it does not open another
			postLabJSON(t, s, batch, token, `{"lab":"Lab B","salmonella":"detected","enterobacteriaceae_cfu_per_g":900}`, 201)
			if n := testkit.Count(t, s.App, "alerts", "", nil); n != i+1 {
				t.Errorf("%d alerts after %d failed batches, want one per batch", n, i+1)
			}
			if n := testkit.Count(t, s.App, "batch_status_history", "batch = {:b}", dbx.Params{"b": batch}); n != 1 {
				t.Errorf("%d history rows, want 1", n)
			}
		})
	}
}

func TestAPartialReportKeepsTheBatchOnHold(t *testing.T) {
	s := start(t, nil)
	batch := labBatch(t, s, "B-261117-003")
	token := testkit.Token(t, s.App, "operator")
	a := postLabJSON(t, s, batch, token, `{"lab":"Lab A","salmonella":"absent","enterobacteriaceae_cfu_per_g":null}`, 201)
	if a.Outcome != "" || a.Batch.Status != "qa_hold" || a.Batch.StatusChanged {
		t.Fatalf("answer %+v", a)
	}
	if !strings.Contains(a.OutcomeReason, "Enterobacteriaceae not tested") || !strings.Contains(a.OutcomeReason, "stays on qa_hold") {
		t.Errorf("outcome_reason %q", a.OutcomeReason)
	}
	if w := writesOfBatch(t, s.App, batch); w["history"] != 0 || w["alerts"] != 0 || w["lab"] != 1 {
		t.Errorf("writes %v", w)
	}
	// the full report then releases it
	if a := postLabJSON(t, s, batch, token, `{"lab":"Lab A","salmonella":"absent","enterobacteriaceae_cfu_per_g":"0"}`, 201); a.Batch.Status != "released" {
		t.Fatalf("full report: %+v", a)
	}
}

func TestReleaseLimitsAreReadFromConfig(t *testing.T) {
	s := start(t, nil)
	superuser := testkit.Token(t, s.App, "superuser")
	token := testkit.Token(t, s.App, "operator")
	setLimit := func(key string, value float64) {
		t.Helper()
		rec, err := s.App.FindFirstRecordByData("config", "key", key)
		if err != nil {
			t.Fatalf("%s is not seeded in config: %v", key, err)
		}
		if !strings.Contains(rec.GetString("description"), "142/2011") {
			t.Errorf("%s description does not cite the regulation: %q", key, rec.GetString("description"))
		}
		code, body := s.Call(t, "PATCH", "/api/collections/config/records/"+rec.Id, superuser, `{"value":`+jsonNumber(value)+`}`)
		if code != 200 {
			t.Fatalf("set %s: %d %s", key, code, body)
		}
	}
	setLimit("lab_enterobacteriaceae_max_cfu_per_g", 500)
	if a := postLabJSON(t, s, labBatch(t, s, "B-261117-010"), token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":450}`, 201); a.Outcome != "pass" {
		t.Errorf("450 with a 500 limit: %+v", a)
	}
	setLimit("lab_enterobacteriaceae_max_cfu_per_g", 100)
	if a := postLabJSON(t, s, labBatch(t, s, "B-261117-011"), token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":150}`, 201); a.Outcome != "fail" || !strings.Contains(a.OutcomeReason, "limit of 100") {
		t.Errorf("150 with a 100 limit: %+v", a)
	}
	setLimit("lab_require_listeria", 1)
	a := postLabJSON(t, s, labBatch(t, s, "B-261117-012"), token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":50}`, 201)
	if a.Outcome != "" || a.Batch.Status != "qa_hold" || !strings.Contains(a.OutcomeReason, "Listeria") {
		t.Errorf("no Listeria when required: %+v", a)
	}
}

func jsonNumber(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAResultForABatchNoLongerOnHoldDoesNotChangeIt(t *testing.T) {
	s := start(t, nil)
	token := testkit.Token(t, s.App, "operator")
	batch := labBatch(t, s, "B-261117-020")
	postLabJSON(t, s, batch, token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":20}`, 201)

	again := postLabJSON(t, s, batch, token, `{"lab":"Retest lab","salmonella":"absent","enterobacteriaceae_cfu_per_g":30}`, 201)
	if again.Batch.Status != "released" || again.Batch.StatusChanged || !strings.Contains(again.OutcomeReason, "already released, so this result does not change its status") {
		t.Errorf("pass on a released batch: %+v", again)
	}
	failing := postLabJSON(t, s, batch, token, `{"lab":"Retest lab","salmonella":"detected","enterobacteriaceae_cfu_per_g":30}`, 201)
	if failing.Outcome != "fail" || failing.Batch.Status != "released" || !strings.Contains(failing.OutcomeReason, "does not change its status") {
		t.Errorf("fail on a released batch: %+v", failing)
	}
	if got := batchStatus(t, s, batch); got != "released" {
		t.Errorf("batch is %s", got)
	}
	if w := writesOfBatch(t, s.App, batch); w["history"] != 1 || w["lab"] != 3 {
		t.Errorf("writes %v", w)
	}
	// a failing result for a batch already sold is news: one critical alert says to decide on a recall
	var title string
	if err := s.App.DB().NewQuery(`SELECT title FROM alerts WHERE severity = 'critical'`).Row(&title); err != nil || !strings.Contains(title, "Released batch") {
		t.Errorf("alert %q %v", title, err)
	}
}

func TestTheSameResultAppliedTwiceIsAppliedOnce(t *testing.T) {
	s := start(t, nil)
	token := testkit.Token(t, s.App, "operator")
	batch := labBatch(t, s, "B-261117-030")
	fields := map[string]string{"lab": "L", "salmonella": "detected", "enterobacteriaceae_cfu_per_g": "20"}
	pdf := labFile{"report_pdf", "r.pdf", labPDF("twice")}
	path := "/api/ops/batches/" + batch + "/lab-results"

	code, first := labMultipart(t, s, path, token, fields, pdf)
	if code != 201 {
		t.Fatalf("first: %d %s", code, first)
	}
	before := writesOfBatch(t, s.App, batch)
	code, second := labMultipart(t, s, path, token, fields, pdf)
	if code != 200 || !decodeLab(t, second).Duplicate || decodeLab(t, second).LabResult.ID != decodeLab(t, first).LabResult.ID {
		t.Fatalf("same PDF again: %d %s", code, second)
	}
	// without a PDF: the same lab, date and values are the same report
	json1 := `{"lab":"M","salmonella":"absent","enterobacteriaceae_cfu_per_g":20,"reported_at":"2026-11-19"}`
	other := labBatch(t, s, "B-261117-031")
	a1 := postLabJSON(t, s, other, token, json1, 201)
	a2 := postLabJSON(t, s, other, token, json1, 200)
	if !a2.Duplicate || a2.LabResult.ID != a1.LabResult.ID {
		t.Errorf("same JSON again: %+v", a2)
	}
	// applying a stored result again changes nothing
	applied, err := batches.ApplyLabResult(s.App, decodeLab(t, first).LabResult.ID, "staff:x", s.Clock.Now())
	if err != nil || !applied.AlreadyApplied || applied.StatusChanged {
		t.Errorf("apply again: %+v %v", applied, err)
	}
	if after := writesOfBatch(t, s.App, batch); after["history"] != 1 || after["lab"] != 1 || after["alerts"] != 1 || after["events"] != before["events"] {
		t.Errorf("writes after repeats %v, before %v", after, before)
	}
	var occurrences int
	s.App.DB().NewQuery(`SELECT occurrences FROM alerts`).Row(&occurrences)
	if occurrences != 1 {
		t.Errorf("alert raised %d times, want once", occurrences)
	}
}

func TestBadLabResultsAreRefusedAndWriteNothing(t *testing.T) {
	s := start(t, nil)
	token := testkit.Token(t, s.App, "operator")
	batch := labBatch(t, s, "B-261117-040")
	path := "/api/ops/batches/" + batch + "/lab-results"
	cases := []struct {
		name   string
		send   func() (int, []byte)
		status int
		says   string
	}{
		{"no lab", func() (int, []byte) {
			return s.Call(t, "POST", path, token, `{"salmonella":"absent"}`)
		}, 400, "lab is required"},
		{"unknown salmonella value", func() (int, []byte) {
			return s.Call(t, "POST", path, token, `{"lab":"L","salmonella":"maybe"}`)
		}, 400, "salmonella must be absent, detected"},
		{"count not a number", func() (int, []byte) {
			return s.Call(t, "POST", path, token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":"<10"}`)
		}, 400, "must be a number"},
		{"negative count", func() (int, []byte) {
			return s.Call(t, "POST", path, token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":-1}`)
		}, 400, "zero or more"},
		{"other tests not a list", func() (int, []byte) {
			return s.Call(t, "POST", path, token, `{"lab":"L","other_tests":{"name":"x"}}`)
		}, 400, "(other_tests) must be a JSON list"},
		{"outcome by hand", func() (int, []byte) {
			return s.Call(t, "POST", path, token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":1,"outcome":"pass"}`)
		}, 400, "field outcome is set by opspine"},
		{"report that is not a PDF", func() (int, []byte) {
			return labMultipart(t, s, path, token, map[string]string{"lab": "L"}, labFile{"report_pdf", "report.pdf", []byte("<html>not a pdf</html>")})
		}, 400, "is not a PDF"},
		{"bad date", func() (int, []byte) {
			return s.Call(t, "POST", path, token, `{"lab":"L","reported_at":"yesterday"}`)
		}, 400, "(reported_at) must be a date"},
		{"date in the future", func() (int, []byte) {
			return s.Call(t, "POST", path, token, `{"lab":"L","reported_at":"2026-12-25"}`)
		}, 400, "is in the future"},
		{"unknown batch", func() (int, []byte) {
			return s.Call(t, "POST", "/api/ops/batches/nosuchbatch1234/lab-results", token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":1}`)
		}, 404, "No batch"},
		{"anonymous", func() (int, []byte) {
			return s.Call(t, "POST", path, "", `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":1}`)
		}, 401, ""},
	}
	before := writesOfBatch(t, s.App, batch)
	for _, c := range cases {
		code, body := c.send()
		if code != c.status || !strings.Contains(strings.ToLower(string(body)), strings.ToLower(c.says)) {
			t.Errorf("%s: %d %s, want %d saying %q", c.name, code, body, c.status, c.says)
		}
	}
	if after := writesOfBatch(t, s.App, batch); !equalCounts(before, after) {
		t.Errorf("refusals wrote: before %v after %v", before, after)
	}
	if n := testkit.Count(t, s.App, "lab_results", "", nil); n != 0 {
		t.Errorf("%d lab results stored", n)
	}
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func TestReportedAtIsADayInBusinessTime(t *testing.T) {
	s := start(t, nil) // Europe/London: 19 November is UTC+0
	token := testkit.Token(t, s.App, "operator")
	a := postLabJSON(t, s, labBatch(t, s, "B-261117-050"), token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":1,"reported_at":"2026-11-19"}`, 201)
	rec, _ := s.App.FindRecordById("lab_results", a.LabResult.ID)
	if got := rec.GetDateTime("reported_at").Time(); !got.Equal(time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("reported_at %v", got)
	}
}

// The proof page shows the result that released the batch, not a later retest that did
// not change its status.
func TestTheProofPageShowsTheResultThatDecidedTheStatus(t *testing.T) {
	s := start(t, nil)
	token := testkit.Token(t, s.App, "operator")
	batch := labBatch(t, s, "B-261117-040")
	postLabJSON(t, s, batch, token, `{"lab":"Deciding Lab","salmonella":"absent","enterobacteriaceae_cfu_per_g":20}`, 201)
	postLabJSON(t, s, batch, token, `{"lab":"Retest Lab","salmonella":"detected","enterobacteriaceae_cfu_per_g":900}`, 201)
	publicID := randomPublicID(t) // labBatch's public ids are not of the proof page's form
	if _, err := s.App.DB().NewQuery(`UPDATE batches SET public_id = {:p} WHERE id = {:id}`).
		Bind(map[string]any{"p": publicID, "id": batch}).Execute(); err != nil {
		t.Fatal(err)
	}
	res, body := proofGet(t, s.URL, "/api/proof/"+publicID, nil)
	if res.StatusCode != 200 || !strings.Contains(body, "Deciding Lab") || strings.Contains(body, "Retest Lab") {
		t.Fatalf("proof JSON %d: %s", res.StatusCode, body)
	}
}

// The proof page shows the Enterobacteriaceae limit a result was judged against: a
// batch released at 250 cfu/g under a 300 limit still shows "≤ 300 cfu/g" and a pass
// after the limit in config is lowered to 200 (and a result judged after that change
// is judged, and shown, against 200).
func TestTheProofPageShowsTheLimitTheResultWasJudgedAgainst(t *testing.T) {
	s := start(t, nil)
	operator := testkit.Token(t, s.App, "operator")
	proofOf := func(batch, publicID string) (limit string, pass bool, verdict string) {
		t.Helper()
		if _, err := s.App.DB().NewQuery(`UPDATE batches SET public_id = {:p} WHERE id = {:id}`).
			Bind(dbx.Params{"p": publicID, "id": batch}).Execute(); err != nil {
			t.Fatal(err)
		}
		code, body := s.Call(t, "GET", "/api/proof/"+publicID, "", "")
		var v struct {
			Verdict string `json:"verdict"`
			Tests   []struct {
				Name  string `json:"name"`
				Limit string `json:"limit"`
				Pass  *bool  `json:"pass"`
			} `json:"tests"`
		}
		if code != 200 || json.Unmarshal(body, &v) != nil {
			t.Fatalf("proof %s: %d %s", publicID, code, body)
		}
		for _, test := range v.Tests {
			if test.Name == "Enterobacteriaceae" && test.Pass != nil {
				return test.Limit, *test.Pass, v.Verdict
			}
		}
		t.Fatalf("no Enterobacteriaceae test on the proof page: %s", body)
		return "", false, ""
	}
	result := `{"lab": "Eurofins", "salmonella": "absent", "listeria": "absent", "enterobacteriaceae_cfu_per_g": 250}`

	early := labBatch(t, s, "B-261117-041")
	if a := postLabJSON(t, s, early, operator, result, 201); a.Batch.Status != "released" {
		t.Fatalf("250 cfu/g under 300: %+v", a)
	}
	if _, err := s.App.DB().NewQuery(`UPDATE config SET value = 200 WHERE key = 'lab_enterobacteriaceae_max_cfu_per_g'`).Execute(); err != nil {
		t.Fatal(err)
	}
	if limit, pass, verdict := proofOf(early, "judgedearly000000001"); limit != "≤ 300 cfu/g" || !pass || verdict != "pass" {
		t.Errorf("released under 300, limit now 200: the page shows %q pass=%v verdict %s; want the limit it was judged against", limit, pass, verdict)
	}

	late := labBatch(t, s, "B-261117-042")
	if a := postLabJSON(t, s, late, operator, result, 201); a.Batch.Status != "failed" {
		t.Fatalf("250 cfu/g under 200: %+v", a)
	}
	if limit, pass, verdict := proofOf(late, "judgedlate0000000001"); limit != "≤ 200 cfu/g" || pass || verdict != "fail" {
		t.Errorf("failed under 200: the page shows %q pass=%v verdict %s", limit, pass, verdict)
	}
}
