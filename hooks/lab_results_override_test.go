package hooks_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/testkit"
)

const justification = "Retest at an accredited lab came back clean; the first sample was contaminated in transit."

func TestOverrideNeedsTwoPeopleEvidenceAndJustification(t *testing.T) {
	s := start(t, nil)
	requester, _ := testkit.Staff(t, s.App, "operator", true)
	approver, managerToken := testkit.Staff(t, s.App, "manager", true)
	otherOperator, operatorToken := testkit.Staff(t, s.App, "operator", true)
	retired, _ := testkit.Staff(t, s.App, "admin", false)
	batch := labBatch(t, s, "B-261118-001")
	failed := labBatch(t, s, "B-261118-002")
	if _, err := batches.Transition(s.App, failed, "failed", "test", "lab fail", "", t0); err != nil {
		t.Fatal(err)
	}
	evidence := labFile{"evidence_pdf", "retest.pdf", labPDF("evidence")}
	valid := func(change func(map[string]string)) map[string]string {
		f := map[string]string{"to_status": "released", "requester": requester, "approver": approver, "justification": justification}
		if change != nil {
			change(f)
		}
		return f
	}
	path := "/api/ops/batches/" + batch + "/override"
	cases := []struct {
		name   string
		path   string
		token  string
		fields map[string]string
		files  []labFile
		status int
		says   string
	}{
		{"requester approves their own", path, managerToken, valid(func(f map[string]string) { f["requester"] = approver }), []labFile{evidence}, 400, "different person"},
		{"approver is an operator", path, managerToken, valid(func(f map[string]string) { f["approver"] = otherOperator }), []labFile{evidence}, 400, "only a manager or an admin"},
		{"approver is inactive", path, managerToken, valid(func(f map[string]string) { f["approver"] = retired }), []labFile{evidence}, 400, "not an active staff member"},
		{"requester unknown", path, managerToken, valid(func(f map[string]string) { f["requester"] = "nobody123456789" }), []labFile{evidence}, 400, "not a staff member"},
		{"no approver", path, managerToken, valid(func(f map[string]string) { delete(f, "approver") }), []labFile{evidence}, 400, "approver is required"},
		{"no evidence", path, managerToken, valid(nil), nil, 400, "evidence_pdf is missing"},
		{"evidence not a PDF", path, managerToken, valid(nil), []labFile{{"evidence_pdf", "e.pdf", []byte("GIF89a")}}, 400, "not a PDF"},
		{"no justification", path, managerToken, valid(func(f map[string]string) { delete(f, "justification") }), []labFile{evidence}, 400, "justification is required"},
		{"justification too short", path, managerToken, valid(func(f map[string]string) { f["justification"] = "lab said ok" }), []labFile{evidence}, 400, "at least 20 characters"},
		{"not a status", path, managerToken, valid(func(f map[string]string) { f["to_status"] = "shipped" }), []labFile{evidence}, 400, "must be released, failed or recalled"},
		{"already in that status", path, managerToken, valid(func(f map[string]string) { f["to_status"] = "qa_hold" }), []labFile{evidence}, 409, "already qa_hold"},
		{"failed cannot be released", "/api/ops/batches/" + failed + "/override", managerToken, valid(nil), []labFile{evidence}, 409, "is failed: it can become recalled, not released"},
		{"unknown batch", "/api/ops/batches/nosuchbatch1234/override", managerToken, valid(nil), []labFile{evidence}, 404, "No batch"},
		{"operator cannot override", path, operatorToken, valid(nil), []labFile{evidence}, 403, ""},
		{"anonymous", path, "", valid(nil), []labFile{evidence}, 401, ""},
	}
	before := map[string]map[string]int{batch: writesOfBatch(t, s.App, batch), failed: writesOfBatch(t, s.App, failed)}
	for _, c := range cases {
		code, body := labMultipart(t, s, c.path, c.token, c.fields, c.files...)
		if code != c.status || !strings.Contains(strings.ToLower(string(body)), strings.ToLower(c.says)) {
			t.Errorf("%s: %d %s, want %d saying %q", c.name, code, body, c.status, c.says)
		}
	}
	for id, counts := range before {
		if after := writesOfBatch(t, s.App, id); !equalCounts(counts, after) {
			t.Errorf("refused overrides wrote: before %v after %v", counts, after)
		}
	}
	if code, body := s.Call(t, "POST", path, managerToken, `{"to_status":"released"}`); code != 400 || !strings.Contains(string(body), "multipart/form-data") {
		t.Errorf("JSON override: %d %s", code, body)
	}

	code, body := labMultipart(t, s, path, managerToken, valid(nil), evidence)
	if code != 200 {
		t.Fatalf("valid override: %d %s", code, body)
	}
	audit, err := s.App.FindFirstRecordByData("manual_override_audit", "batch", batch)
	if err != nil {
		t.Fatal(err)
	}
	if audit.GetString("batch_code") != "B-261118-001" || audit.GetString("from_status") != "qa_hold" || audit.GetString("to_status") != "released" ||
		audit.GetString("requester") != requester || audit.GetString("approver") != approver ||
		audit.GetString("justification") != justification || audit.GetString("evidence_pdf") == "" {
		t.Errorf("audit row %v", audit.PublicExport())
	}
	if !strings.Contains(string(body), audit.Id) {
		t.Errorf("answer does not name the audit row: %s", body)
	}
	var h struct {
		To     string `db:"to_status"`
		Reason string `db:"reason"`
	}
	if err := s.App.DB().NewQuery(`SELECT to_status, reason FROM batch_status_history WHERE batch = {:b}`).Bind(dbx.Params{"b": batch}).One(&h); err != nil {
		t.Fatal(err)
	}
	if h.To != "released" || !strings.Contains(h.Reason, "Manual override "+audit.Id) || !strings.Contains(h.Reason, "approved by staff:"+approver) {
		t.Errorf("history %+v", h)
	}
	if got := batchStatus(t, s, batch); got != "released" {
		t.Errorf("batch is %s", got)
	}
	// the same override again: the batch is released already, nothing more is written
	if code, _ := labMultipart(t, s, path, managerToken, valid(nil), evidence); code != 409 {
		t.Errorf("repeat override: %d, want 409", code)
	}
	if n := testkit.Count(t, s.App, "manual_override_audit", "", nil); n != 1 {
		t.Errorf("%d audit rows, want 1", n)
	}
}

func TestTransitionsFollowTheBatchLifecycle(t *testing.T) {
	s := start(t, nil)
	cases := []struct {
		from, to string
		changed  bool
		refusal  string
	}{
		{"qa_hold", "released", true, ""},
		{"qa_hold", "failed", true, ""},
		{"qa_hold", "recalled", true, ""},
		{"released", "recalled", true, ""},
		{"failed", "recalled", true, ""},
		{"released", "released", false, ""},
		{"released", "qa_hold", false, "is released: it can become recalled, not qa_hold"},
		{"released", "failed", false, "is released: it can become recalled, not failed"},
		{"failed", "released", false, "is failed: it can become recalled, not released"},
		{"recalled", "released", false, "is recalled, which is final"},
		{"qa_hold", "shipped", false, "not a batch status"},
	}
	for i, c := range cases {
		batch := labBatch(t, s, "B-261118-1"+string(rune('a'+i)))
		if _, err := s.App.DB().NewQuery(`UPDATE batches SET status = {:s} WHERE id = {:id}`).Bind(dbx.Params{"s": c.from, "id": batch}).Execute(); err != nil {
			t.Fatal(err)
		}
		ch, err := batches.Transition(s.App, batch, c.to, "staff:test", "lifecycle test", "", t0)
		if c.refusal != "" {
			if err == nil || !errors.Is(err, batches.ErrTransitionNotAllowed) || !strings.Contains(err.Error(), c.refusal) {
				t.Errorf("%s → %s: %v, want a refusal saying %q", c.from, c.to, err, c.refusal)
			}
		} else if err != nil || ch.Changed != c.changed || ch.From != c.from {
			t.Errorf("%s → %s: %+v %v", c.from, c.to, ch, err)
		}
		wantHistory := 0
		if c.changed {
			wantHistory = 1
		}
		p := dbx.Params{"b": batch}
		if n := testkit.Count(t, s.App, "batch_status_history", "batch = {:b}", p); n != wantHistory {
			t.Errorf("%s → %s: %d history rows, want %d", c.from, c.to, n, wantHistory)
		}
		if n := testkit.Count(t, s.App, "ops_events", "entity_id = {:b} AND kind = {:k}", dbx.Params{"b": batch, "k": "batch." + c.to}); n != wantHistory {
			t.Errorf("%s → %s: %d ops events, want %d", c.from, c.to, n, wantHistory)
		}
		if c.changed && testkit.Count(t, s.App, "batches", "id = {:b} AND "+c.to+"_at != ''", p) != 1 {
			t.Errorf("%s → %s: %s_at not set", c.from, c.to, c.to)
		}
	}
}

func TestOnReleasedHooksRunInTheReleaseTransaction(t *testing.T) {
	s := start(t, nil)
	token := testkit.Token(t, s.App, "operator")
	var seen []string
	remove := batches.OnReleased(func(txApp core.App, batchID string) error {
		if !txApp.IsTransactional() {
			t.Error("the hook runs outside the transaction")
		}
		var status string
		txApp.DB().NewQuery(`SELECT status FROM batches WHERE id = {:id}`).Bind(dbx.Params{"id": batchID}).Row(&status)
		seen = append(seen, status)
		if status == "released" && len(seen) == 2 {
			return errors.New("allocation broke")
		}
		return nil
	})
	defer remove()
	ok := labBatch(t, s, "B-261118-201")
	postLabJSON(t, s, ok, token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":1}`, 201)
	if len(seen) != 1 || seen[0] != "released" {
		t.Fatalf("hook saw %v, want the batch released", seen)
	}
	// a hook that fails rolls the whole release back: no result, no status change, no history
	broken := labBatch(t, s, "B-261118-202")
	before := writesOfBatch(t, s.App, broken)
	postLabJSON(t, s, broken, token, `{"lab":"L","salmonella":"absent","enterobacteriaceae_cfu_per_g":1}`, 500)
	if after := writesOfBatch(t, s.App, broken); !equalCounts(before, after) || batchStatus(t, s, broken) != "qa_hold" {
		t.Errorf("a failed hook left writes: before %v after %v", before, after)
	}
}
