package hooks

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"
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
var labResultDerived = []string{"outcome", "outcome_reason", "entered_by", "pdf_sha256", "source", "confidence"}

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

// overrideBatchStatus is POST /api/ops/batches/{id}/override, multipart: to_status,
// requester, approver, justification and evidence_pdf.
func (s *Spine) overrideBatchStatus(e *core.RequestEvent) error {
	if !strings.HasPrefix(e.Request.Header.Get("Content-Type"), "multipart/form-data") {
		return e.BadRequestError("Send multipart/form-data with to_status, requester, approver, justification and the evidence_pdf file.", nil)
	}
	fields, err := formOrJSONFields(e)
	if err != nil {
		return batchActionError(e, err, "")
	}
	evidence, err := uploadedPDFField(e, "evidence_pdf")
	if err != nil {
		return batchActionError(e, err, "")
	}
	res, err := batches.OverrideStatus(s.App, batches.OverrideInput{
		BatchID: e.Request.PathValue("id"), ToStatus: fields["to_status"],
		RequesterID: fields["requester"], ApproverID: fields["approver"],
		Justification: fields["justification"], Evidence: evidence,
	}, actorOf(e), s.now())
	if err != nil {
		return batchActionError(e, err, "Could not override the batch's status; nothing was changed.")
	}
	return e.JSON(http.StatusOK, res)
}

// recallBatch is POST /api/ops/batches/{id}/recall {reason}: the batch becomes recalled
// and the answer is its forward trace.
func (s *Spine) recallBatch(e *core.RequestEvent) error {
	var body struct {
		Reason string `json:"reason" form:"reason"`
	}
	if err := e.BindBody(&body); err != nil {
		return e.BadRequestError(`Send {"reason": "why the batch is recalled"}.`, nil)
	}
	id := e.Request.PathValue("id")
	res, err := batches.RecallBatch(s.App, id, body.Reason, actorOf(e), s.now())
	if err != nil {
		return batchActionError(e, err, "Could not recall the batch; nothing was changed.")
	}
	return e.JSON(http.StatusOK, map[string]any{
		"recall":    res,
		"trace_csv": "/api/ops/batches/" + id + "/trace.csv",
	})
}

// batchTraceCSV is GET /api/ops/batches/{id}/trace.csv: every order and customer that
// received (or is held to receive) units of the batch.
func (s *Spine) batchTraceCSV(e *core.RequestEvent) error {
	batch, err := s.App.FindRecordById("batches", e.Request.PathValue("id"))
	if errors.Is(err, sql.ErrNoRows) {
		return e.NotFoundError("No batch with that id.", nil)
	}
	if err != nil {
		return e.InternalServerError("Could not read the batch.", err)
	}
	rows, err := batches.ForwardTrace(s.App.DB(), batch.Id)
	if err != nil {
		return e.InternalServerError("Could not read the batch's trace.", err)
	}
	var buf bytes.Buffer
	if err := batches.WriteTraceCSV(&buf, rows, s.Config.Timezone); err != nil {
		return e.InternalServerError("Could not write the trace CSV.", err)
	}
	e.Response.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-trace.csv"`, csvFileName(batch.GetString("code"))))
	return e.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
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

// createOverrideRecord runs the override for a manual_override_audit record created in
// the admin UI: batch, to_status, requester, approver, justification and evidence_pdf
// as staff fill them in; batch_code and from_status are taken from the batch.
func (s *Spine) createOverrideRecord(e *core.RecordRequestEvent) error {
	var evidence *batches.PDF
	if files := e.Record.GetUnsavedFiles("evidence_pdf"); len(files) > 0 {
		data, err := readUploadedPDF(files[0])
		if err != nil {
			return e.BadRequestError("Could not read the file evidence_pdf.", err)
		}
		evidence = &batches.PDF{Name: files[0].OriginalName, Data: data}
	}
	res, err := batches.OverrideStatus(s.App, batches.OverrideInput{
		BatchID: e.Record.GetString("batch"), ToStatus: e.Record.GetString("to_status"),
		RequesterID: e.Record.GetString("requester"), ApproverID: e.Record.GetString("approver"),
		Justification: e.Record.GetString("justification"), Evidence: evidence,
	}, actorOf(e.RequestEvent), s.now())
	if err != nil {
		return batchActionError(e.RequestEvent, err, "Could not override the batch's status; nothing was changed.")
	}
	fresh, err := s.App.FindRecordById("manual_override_audit", res.AuditID)
	if err != nil {
		return e.InternalServerError("The override was made but its audit row could not be read back.", err)
	}
	return e.JSON(http.StatusOK, fresh)
}

// batchActionError turns an error of app/batches into an answer a person can act on;
// internal is the message for anything unexpected.
func batchActionError(e *core.RequestEvent, err error, internal string) error {
	var apiErr *router.ApiError
	var inErr *batches.InputError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &inErr):
		return e.BadRequestError(inErr.Message, nil)
	case errors.Is(err, batches.ErrNoSuchBatch):
		return e.NotFoundError("No batch with that id.", nil)
	case errors.Is(err, batches.ErrTransitionNotAllowed):
		var trErr *batches.TransitionError
		if errors.As(err, &trErr) {
			err = trErr
		}
		return e.Error(http.StatusConflict, sentenceCase(err.Error())+".", nil)
	case errors.Is(err, batches.ErrNothingToOverride):
		return e.Error(http.StatusConflict, sentenceCase(err.Error())+"; nothing was changed.", nil)
	}
	if internal == "" {
		internal = "Something went wrong; nothing was changed."
	}
	return e.InternalServerError(internal, err)
}

func batchInputError(field, format string, args ...any) error {
	return &batches.InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// formOrJSONFields reads a multipart form or a JSON object into strings: JSON strings as
// they are, null as empty, numbers, lists and objects as their JSON text.
func formOrJSONFields(e *core.RequestEvent) (map[string]string, error) {
	out := map[string]string{}
	ct := e.Request.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "multipart/form-data"):
		if err := e.Request.ParseMultipartForm(router.DefaultMaxMemory); err != nil {
			return nil, batchInputError("", "Could not read the multipart form: %v", err)
		}
		for k, v := range e.Request.MultipartForm.Value {
			if len(v) > 0 {
				out[k] = v[0]
			}
		}
	case strings.HasPrefix(ct, "application/json"):
		var raw map[string]json.RawMessage
		if err := json.NewDecoder(e.Request.Body).Decode(&raw); err != nil {
			return nil, batchInputError("", "The body is not a JSON object: %v", err)
		}
		for k, v := range raw {
			var s string
			switch {
			case json.Unmarshal(v, &s) == nil:
				out[k] = s
			case string(v) == "null":
				out[k] = ""
			default:
				out[k] = string(v)
			}
		}
	default:
		return nil, batchInputError("", "Send multipart/form-data or application/json.")
	}
	return out, nil
}

// uploadedPDFField reads the one file sent as key (nil when none). Whether it is a PDF is
// checked by app/batches, by its content.
func uploadedPDFField(e *core.RequestEvent, key string) (*batches.PDF, error) {
	if !strings.HasPrefix(e.Request.Header.Get("Content-Type"), "multipart/form-data") {
		return nil, nil
	}
	files, err := e.FindUploadedFiles(key)
	if errors.Is(err, http.ErrMissingFile) {
		return nil, nil
	}
	if err != nil {
		return nil, batchInputError(key, "Could not read %s: %v", key, err)
	}
	if len(files) > 1 {
		return nil, batchInputError(key, "Send one %s, not %d.", key, len(files))
	}
	data, err := readUploadedPDF(files[0])
	if err != nil {
		return nil, batchInputError(key, "Could not read %s: %v", key, err)
	}
	return &batches.PDF{Name: files[0].OriginalName, Data: data}, nil
}

// readUploadedPDF reads an uploaded file, at most one byte past the PDF limit (so that an
// oversized file is refused by size, not read whole).
func readUploadedPDF(f *filesystem.File) ([]byte, error) {
	r, err := f.Reader.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, batches.MaxPDFBytes+1))
}

func sentenceCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// csvFileName keeps letters, digits, dash and underscore for a Content-Disposition name.
func csvFileName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "batch"
	}
	return b.String()
}
