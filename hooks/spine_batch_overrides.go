package hooks

// Manual overrides, recalls and the recall trace: the manager actions on a batch,
// from the ops API and the admin UI.

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/batches"
)

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
