package batches

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"

	"github.com/opspine/opspine/app/alerts"
)

// Where a lab result came from.
const (
	SourceManual = "manual"
	SourceEmail  = "email"
)

// MaxPDFBytes is the largest report or evidence PDF accepted (the file fields' limit).
const MaxPDFBytes = 20 << 20

// ErrNoSuchLabResult is returned by ApplyLabResult for an unknown id.
var ErrNoSuchLabResult = errors.New("no such lab result")

// refuse is a rejected input (an *InputError, see create.go) about field.
func refuse(field, format string, args ...any) error {
	return &InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// PDF is an uploaded PDF file, read whole (at most MaxPDFBytes).
type PDF struct {
	Name string
	Data []byte
}

// checkPDF refuses a missing, empty, oversized or non-PDF file; what names it in the message.
func checkPDF(p *PDF, what string) error {
	switch {
	case p == nil || len(p.Data) == 0:
		return refuse(what, "The file %s is missing: attach the PDF.", what)
	case len(p.Data) > MaxPDFBytes:
		return refuse(what, "The file %s is larger than %d MB.", what, MaxPDFBytes>>20)
	case !IsPDF(p.Data):
		return refuse(what, "The file %s (%q) is not a PDF: its content does not start with %%PDF-.", what, p.Name)
	}
	return nil
}

// IsPDF reports whether data is a PDF by its content (the %PDF- header), not its name.
func IsPDF(data []byte) bool { return bytes.HasPrefix(data, []byte("%PDF-")) }

// SHA256Hex is the hex SHA-256 of data, as stored in pdf_sha256.
func SHA256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (p *PDF) file(fallbackName string) (*filesystem.File, error) {
	name := p.Name
	if strings.TrimSpace(name) == "" {
		name = fallbackName
	}
	if !strings.HasSuffix(strings.ToLower(name), ".pdf") {
		name += ".pdf"
	}
	return filesystem.NewFileFromBytes(p.Data, name)
}

// LabResultInput is one lab report entered by staff or read from a lab email.
type LabResultInput struct {
	Lab string
	Findings
	ReportedAt time.Time
	ReportPDF  *PDF    // optional
	Source     string  // manual (default) or email
	Confidence float64 // 0..1; manual entry is 1
}

func (in *LabResultInput) normalize() error {
	in.Lab = strings.TrimSpace(in.Lab)
	in.Salmonella = strings.ToLower(strings.TrimSpace(in.Salmonella))
	in.Listeria = strings.ToLower(strings.TrimSpace(in.Listeria))
	if in.Source == "" {
		in.Source = SourceManual
	}
	if in.Source == SourceManual && in.Confidence == 0 {
		in.Confidence = 1
	}
	switch {
	case in.Lab == "":
		return refuse("lab", "lab is required: the laboratory that tested the samples.")
	case len(in.Lab) > 2000:
		return refuse("lab", "lab is too long.")
	case in.Source != SourceManual && in.Source != SourceEmail:
		return refuse("source", "source must be manual or email, not %q.", in.Source)
	case in.Confidence < 0 || in.Confidence > 1 || math.IsNaN(in.Confidence):
		return refuse("confidence", "confidence must be between 0 and 1.")
	}
	if err := checkFindings(&in.Findings); err != nil {
		return err
	}
	if in.ReportPDF != nil {
		return checkPDF(in.ReportPDF, "report_pdf")
	}
	return nil
}

// checkFindings refuses values the release rule cannot read.
func checkFindings(f *Findings) error {
	for _, t := range []struct{ name, value string }{{"salmonella", f.Salmonella}, {"listeria", f.Listeria}} {
		if t.value != "" && t.value != Absent && t.value != Detected {
			return refuse(t.name, "%s must be absent, detected, or empty when not tested; not %q.", t.name, t.value)
		}
	}
	if math.IsNaN(f.EnterobacteriaceaeCFU) || math.IsInf(f.EnterobacteriaceaeCFU, 0) || f.EnterobacteriaceaeCFU < 0 {
		return refuse("enterobacteriaceae_cfu_per_g", "Enterobacteriaceae (enterobacteriaceae_cfu_per_g) must be a count of zero or more, or empty when not tested.")
	}
	if f.EnterobacteriaceaeCFU > 0 {
		f.EnterobacteriaceaeTested = true // a count is a test result
	}
	for i, t := range f.OtherTests {
		if strings.TrimSpace(t.Name) == "" {
			return refuse("other_tests", "Each further test needs a name: other_tests[%d] has none (each is {name, result, unit, limit, pass}).", i)
		}
	}
	return nil
}

// Applied is what the release rule did with one lab result.
type Applied struct {
	LabResultID    string `json:"lab_result_id"`
	BatchID        string `json:"batch_id"`
	BatchCode      string `json:"batch_code"`
	Outcome        string `json:"outcome"`
	OutcomeReason  string `json:"outcome_reason"`
	PreviousStatus string `json:"previous_status"`
	Status         string `json:"batch_status"`
	StatusChanged  bool   `json:"status_changed"`
	// AlreadyApplied: the result had been applied before; nothing changed now.
	AlreadyApplied bool `json:"already_applied"`
	// Duplicate: RecordLabResult found the same report already recorded for the batch.
	Duplicate bool   `json:"duplicate"`
	AlertID   string `json:"alert_id,omitempty"`
}

// RecordLabResult stores a lab report for a batch and applies the release rule to it,
// in one transaction (the caller's, when app is a transaction's app). The same report
// sent again (same PDF, or without a PDF the same lab, date and values) is not stored
// twice: the answer is the first one, marked Duplicate.
func RecordLabResult(app core.App, batchID string, in LabResultInput, actor string, now time.Time) (Applied, error) {
	if err := in.normalize(); err != nil {
		return Applied{}, err
	}
	var a Applied
	err := app.RunInTransaction(func(txApp core.App) error {
		if _, err := findBatch(txApp, batchID); err != nil {
			return err
		}
		existing, err := findSameLabResult(txApp, batchID, in)
		if err != nil {
			return err
		}
		if existing != "" {
			a, err = ApplyLabResult(txApp, existing, actor, now)
			a.Duplicate = true
			return err
		}
		id, err := saveLabResult(txApp, batchID, in, actor)
		if err != nil {
			return err
		}
		a, err = ApplyLabResult(txApp, id, actor, now)
		return err
	})
	return a, err
}

func saveLabResult(txApp core.App, batchID string, in LabResultInput, actor string) (string, error) {
	col, err := txApp.FindCachedCollectionByNameOrId("lab_results")
	if err != nil {
		return "", err
	}
	rec := core.NewRecord(col)
	rec.Set("batch", batchID)
	rec.Set("lab", in.Lab)
	rec.Set("salmonella", in.Salmonella)
	rec.Set("listeria", in.Listeria)
	rec.Set("enterobacteriaceae_tested", in.EnterobacteriaceaeTested)
	rec.Set("enterobacteriaceae_cfu_per_g", in.EnterobacteriaceaeCFU)
	rec.Set("other_tests", otherTestsJSON(in.OtherTests))
	rec.Set("source", in.Source)
	rec.Set("confidence", in.Confidence)
	rec.Set("entered_by", actor)
	if !in.ReportedAt.IsZero() {
		rec.Set("reported_at", in.ReportedAt.UTC())
	}
	if in.ReportPDF != nil {
		f, err := in.ReportPDF.file("lab-report")
		if err != nil {
			return "", fmt.Errorf("lab result: read report PDF: %w", err)
		}
		rec.Set("report_pdf", f)
		rec.Set("pdf_sha256", SHA256Hex(in.ReportPDF.Data))
	}
	if err := txApp.Save(rec); err != nil {
		return "", fmt.Errorf("save lab result for batch %s: %w", batchID, err)
	}
	return rec.Id, nil
}

func otherTestsJSON(tests []OtherTest) string {
	if tests == nil {
		tests = []OtherTest{}
	}
	b, _ := json.Marshal(tests) // plain data: cannot fail
	return string(b)
}

// findSameLabResult returns the id of a lab result of the batch that is the same report
// as in, or "".
func findSameLabResult(txApp core.App, batchID string, in LabResultInput) (string, error) {
	if in.ReportPDF != nil {
		var id string
		err := txApp.DB().NewQuery(`SELECT id FROM lab_results WHERE batch = {:batch} AND pdf_sha256 = {:sha} ORDER BY created LIMIT 1`).
			Bind(dbx.Params{"batch": batchID, "sha": SHA256Hex(in.ReportPDF.Data)}).Row(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return id, err
	}
	recs, err := txApp.FindRecordsByFilter("lab_results", "batch = {:batch} && lab = {:lab} && pdf_sha256 = ''", "created", 0, 0,
		dbx.Params{"batch": batchID, "lab": in.Lab})
	if err != nil {
		return "", fmt.Errorf("look for the same lab result: %w", err)
	}
	for _, r := range recs {
		f, err := findingsOf(r)
		if err != nil {
			continue
		}
		sameDate := r.GetDateTime("reported_at").Time().Equal(in.ReportedAt.UTC().Truncate(time.Millisecond))
		if sameDate && reflect.DeepEqual(normalizedJSON(f), normalizedJSON(in.Findings)) {
			return r.Id, nil
		}
	}
	return "", nil
}

// normalizedJSON compares findings by meaning (a number is a number however typed).
func normalizedJSON(f Findings) any {
	if len(f.OtherTests) == 0 {
		f.OtherTests = nil
	}
	b, _ := json.Marshal(f)
	var v any
	_ = json.Unmarshal(b, &v)
	return v
}

// findingsOf reads what a stored lab result says.
func findingsOf(rec *core.Record) (Findings, error) {
	f := Findings{
		Salmonella:               rec.GetString("salmonella"),
		Listeria:                 rec.GetString("listeria"),
		EnterobacteriaceaeTested: rec.GetBool("enterobacteriaceae_tested"),
		EnterobacteriaceaeCFU:    rec.GetFloat("enterobacteriaceae_cfu_per_g"),
	}
	tests, err := ParseOtherTests(rec.GetString("other_tests"))
	if err != nil {
		return f, err
	}
	f.OtherTests = tests
	return f, checkFindings(&f)
}

// ParseOtherTests reads other_tests: empty, null or a JSON list of {name, result, unit, limit, pass}.
func ParseOtherTests(raw string) ([]OtherTest, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "null" || raw == `""` {
		return nil, nil
	}
	var tests []OtherTest
	if err := json.Unmarshal([]byte(raw), &tests); err != nil {
		return nil, refuse("other_tests", "Further tests (other_tests) must be a JSON list of {name, result, unit, limit, pass}: %v", err)
	}
	return tests, nil
}

// ApplyLabResult applies the release rule to a stored lab result, in one transaction
// (the caller's, when app is a transaction's app): it sets the result's outcome and
// outcome_reason, releases the batch on a pass, fails it and raises a critical alert on
// a fail, and leaves it on qa_hold when a required test is missing. A batch no longer
// on qa_hold keeps its status; the reason says so. A result applied before (it has an
// outcome_reason) is left as it is and reported AlreadyApplied.
func ApplyLabResult(app core.App, labResultID, actor string, now time.Time) (Applied, error) {
	now = now.UTC()
	a := Applied{LabResultID: labResultID}
	err := app.RunInTransaction(func(txApp core.App) error {
		rec, err := txApp.FindRecordById("lab_results", labResultID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("lab result %q: %w", labResultID, ErrNoSuchLabResult)
		}
		if err != nil {
			return fmt.Errorf("read lab result %s: %w", labResultID, err)
		}
		batch, err := findBatch(txApp, rec.GetString("batch"))
		if err != nil {
			return err
		}
		a.BatchID, a.BatchCode = batch.Id, batch.GetString("code")
		a.PreviousStatus = batch.GetString("status")
		a.Status = a.PreviousStatus
		if reason := rec.GetString("outcome_reason"); reason != "" {
			a.Outcome, a.OutcomeReason, a.AlreadyApplied = rec.GetString("outcome"), reason, true
			return nil
		}
		if err := decide(txApp, rec, &a, actor, now); err != nil {
			return err
		}
		rec.Set("outcome", a.Outcome)
		rec.Set("outcome_reason", a.OutcomeReason)
		if rec.GetString("entered_by") == "" {
			rec.Set("entered_by", actor)
		}
		if err := txApp.Save(rec); err != nil {
			return fmt.Errorf("save outcome of lab result %s: %w", labResultID, err)
		}
		return nil
	})
	return a, err
}

// decide runs the rule on rec and moves the batch; it fills a's outcome and status.
func decide(txApp core.App, rec *core.Record, a *Applied, actor string, now time.Time) error {
	f, err := findingsOf(rec)
	if err != nil {
		return err
	}
	limits := CurrentLimits(txApp.DB())
	rec.Set("enterobacteriaceae_limit_cfu_per_g", limits.EnterobacteriaceaeMaxCFU) // what the proof page shows
	v := EvaluateLabFindings(f, limits)
	a.Outcome, a.OutcomeReason = v.Outcome, v.Reason
	lab := rec.GetString("lab")
	if a.PreviousStatus != StatusQAHold {
		a.OutcomeReason += fmt.Sprintf(" The batch is already %s, so this result does not change its status.", a.PreviousStatus)
		if v.Outcome == OutcomeFail && a.PreviousStatus == StatusReleased {
			a.AlertID, err = raiseLabFailure(txApp, now, a, lab, v,
				fmt.Sprintf("Released batch %s has a failing lab result", a.BatchCode),
				"The batch stays released: decide whether to recall it (POST /api/ops/batches/{id}/recall).")
		}
		return err
	}
	var to string
	switch v.Outcome {
	case OutcomePass:
		to = StatusReleased
	case OutcomeFail:
		to = StatusFailed
	default:
		a.OutcomeReason += " The batch stays on qa_hold."
		return nil
	}
	ch, err := Transition(txApp, a.BatchID, to, actor, fmt.Sprintf("Lab result from %s: %s", lab, v.Reason), rec.Id, now)
	if err != nil {
		return err
	}
	a.Status, a.StatusChanged = ch.To, ch.Changed
	if to == StatusFailed {
		a.AlertID, err = raiseLabFailure(txApp, now, a, lab, v,
			fmt.Sprintf("Batch %s failed its lab tests", a.BatchCode),
			"The batch is failed and cannot be sold or allocated. Investigate with the co-packer; only a manual override with evidence changes it.")
	}
	return err
}

// raiseLabFailure opens (or updates) the critical alert of a batch's failed lab result;
// one alert per batch however many failing results arrive.
func raiseLabFailure(txApp core.App, now time.Time, a *Applied, lab string, v Verdict, title, next string) (string, error) {
	id, _, err := alerts.Raise(txApp.DB(), now, alerts.Alert{
		Severity: alerts.Critical, Title: title,
		Body:        v.Reason + " " + next,
		SourceCheck: "lab-results",
		DedupeKey:   "batch-lab-failed:" + a.BatchID,
		Fields: []alerts.Field{
			{Label: "Batch", Value: a.BatchCode},
			{Label: "Lab", Value: clipRunes(lab, 100)},
			{Label: "Failed", Value: clipRunes(strings.Join(v.Failures, "; "), 300)},
		},
	})
	if err != nil {
		return "", fmt.Errorf("batch %s: %w", a.BatchCode, err)
	}
	return id, nil
}
