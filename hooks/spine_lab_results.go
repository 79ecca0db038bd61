package hooks

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/opspine/opspine/app/batches"
)

// bindLabResultsApi registers the lab result, override and recall routes: any staff
// member records lab results; overrides, recalls and the trace (it names customers)
// need a manager or an admin.
func (s *Spine) bindLabResultsApi(g *router.RouterGroup[*core.RequestEvent]) {
	managers := requireStaff(RoleAdmin, RoleManager)
	g.POST("/batches/{id}/lab-results", s.recordLabResult)
	g.POST("/batches/{id}/override", s.overrideBatchStatus).Bind(managers)
	g.POST("/batches/{id}/recall", s.recallBatch).Bind(managers)
	g.GET("/batches/{id}/trace.csv", s.batchTraceCSV).Bind(managers)
}

// bindLabResultRecordHooks makes the admin UI's creates the actions that own them: a
// lab_results record is saved and the release rule applied in one transaction; a
// manual_override_audit record is the override itself (same checks as the route).
// Bind must register it before the derived-field guard.
func (s *Spine) bindLabResultRecordHooks() {
	s.App.OnRecordCreateRequest("lab_results").BindFunc(s.createLabResultRecord)
	s.App.OnRecordCreateRequest("manual_override_audit").BindFunc(s.createOverrideRecord)
}

// labResultDerived are the lab_results fields opspine sets; a request may not.
var labResultDerived = []string{"outcome", "outcome_reason", "entered_by", "pdf_sha256", "source", "confidence",
	"enterobacteriaceae_limit_cfu_per_g"}

// recordLabResult is POST /api/ops/batches/{id}/lab-results: multipart (with an optional
// report_pdf) or JSON. 201 with the result and the batch's status; 200 when the same
// report was recorded before (duplicate: true).
func (s *Spine) recordLabResult(e *core.RequestEvent) error {
	in, err := s.readLabResultInput(e)
	if err != nil {
		return batchActionError(e, err, "")
	}
	res, err := batches.RecordLabResult(s.App, e.Request.PathValue("id"), in, actorOf(e), s.now())
	if err != nil {
		return batchActionError(e, err, "Could not record the lab result; nothing was saved.")
	}
	rec, err := s.App.FindRecordById("lab_results", res.LabResultID)
	if err != nil {
		return e.InternalServerError("The lab result was recorded but could not be read back.", err)
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	return e.JSON(status, map[string]any{
		"lab_result":     rec,
		"outcome":        res.Outcome,
		"outcome_reason": res.OutcomeReason,
		"duplicate":      res.Duplicate,
		"batch": map[string]any{
			"id": res.BatchID, "code": res.BatchCode, "status": res.Status,
			"previous_status": res.PreviousStatus, "status_changed": res.StatusChanged,
		},
		"alert_id": res.AlertID,
	})
}

// readLabResultInput reads the lab result fields from a multipart form or a JSON body.
func (s *Spine) readLabResultInput(e *core.RequestEvent) (batches.LabResultInput, error) {
	var in batches.LabResultInput
	fields, err := formOrJSONFields(e)
	if err != nil {
		return in, err
	}
	for _, f := range labResultDerived {
		if fields[f] != "" {
			return in, batchInputError(f, "The field %s is set by opspine (the release rule and who entered it); leave it out.", f)
		}
	}
	in.Lab, in.Salmonella, in.Listeria = fields["lab"], fields["salmonella"], fields["listeria"]
	if cfu := strings.TrimSpace(fields["enterobacteriaceae_cfu_per_g"]); cfu != "" {
		v, err := strconv.ParseFloat(cfu, 64)
		if err != nil {
			return in, batchInputError("enterobacteriaceae_cfu_per_g",
				"Enterobacteriaceae (enterobacteriaceae_cfu_per_g) must be a number of cfu/g (for a result below the detection limit, such as <10, enter the limit), or empty when not tested.")
		}
		in.EnterobacteriaceaeTested, in.EnterobacteriaceaeCFU = true, v
	}
	if in.OtherTests, err = batches.ParseOtherTests(fields["other_tests"]); err != nil {
		return in, err
	}
	if in.ReportedAt, err = s.parseReportedAt(fields["reported_at"]); err != nil {
		return in, err
	}
	in.Source = batches.SourceManual
	in.ReportPDF, err = uploadedPDFField(e, "report_pdf")
	return in, err
}

// parseReportedAt reads a date (a day in business time) or a date-time; empty is none.
// A report dated more than a day ahead is a typing error.
func (s *Spine) parseReportedAt(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, v, s.Config.Timezone)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.000Z07:00", "2006-01-02 15:04:05Z07:00"} {
		if err == nil {
			break
		}
		t, err = time.Parse(layout, v)
	}
	if err != nil {
		return time.Time{}, batchInputError("reported_at", "The report date (reported_at) must be a date (2026-11-20) or an RFC 3339 time, not %q.", v)
	}
	if t.After(s.now().Add(24 * time.Hour)) {
		return time.Time{}, batchInputError("reported_at", "The report date (reported_at) %s is in the future.", v)
	}
	return t.UTC(), nil
}

// createLabResultRecord applies the release rule to a lab result created in the admin
// UI (or the records API), in the transaction that saves it; the answer shows the outcome.
func (s *Spine) createLabResultRecord(e *core.RecordRequestEvent) error {
	for _, f := range labResultDerived {
		v := e.Record.Get(f)
		asDerived := (f == "source" && sameValue(v, batches.SourceManual)) || (f == "confidence" && sameValue(v, 1))
		if v != nil && !asDerived && !sameValue(v, "") && !sameValue(v, 0) {
			return e.BadRequestError(fmt.Sprintf("The field lab_results.%s is set by opspine (the release rule and who entered it); leave it empty.", f), nil)
		}
	}
	tests, err := batches.ParseOtherTests(e.Record.GetString("other_tests"))
	if err != nil {
		return batchActionError(e.RequestEvent, err, "")
	}
	if tests == nil {
		e.Record.Set("other_tests", "[]")
	}
	if e.Record.GetFloat("enterobacteriaceae_cfu_per_g") > 0 {
		e.Record.Set("enterobacteriaceae_tested", true)
	}
	if files := e.Record.GetUnsavedFiles("report_pdf"); len(files) > 0 {
		data, err := readUploadedPDF(files[0])
		if err != nil {
			return e.BadRequestError("Could not read the file report_pdf.", err)
		}
		if !batches.IsPDF(data) {
			return e.BadRequestError("The file report_pdf is not a PDF: its content does not start with %PDF-.", nil)
		}
		e.Record.Set("pdf_sha256", batches.SHA256Hex(data))
	}
	actor, now := actorOf(e.RequestEvent), s.now()
	e.Record.Set("source", batches.SourceManual)
	e.Record.Set("confidence", 1)
	e.Record.Set("entered_by", actor)
	err = e.App.RunInTransaction(func(txApp core.App) error {
		e.App = txApp
		if err := e.Next(); err != nil {
			return err
		}
		res, err := batches.ApplyLabResult(txApp, e.Record.Id, actor, now)
		if err != nil {
			return err
		}
		// the answer is written from e.Record once the transaction commits
		e.Record.Set("outcome", res.Outcome)
		e.Record.Set("outcome_reason", res.OutcomeReason)
		return nil
	})
	if err != nil {
		return batchActionError(e.RequestEvent, err, "Could not apply the release rule; the lab result was not saved.")
	}
	return nil
}
