package batches

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pocketbase/pocketbase/core"
)

// MinJustificationRunes is the shortest written justification an override accepts.
const MinJustificationRunes = 20

// ErrNothingToOverride: the batch is already in the status the override asks for.
var ErrNothingToOverride = errors.New("nothing to override")

// Roles that may approve an override.
var approverRoles = []string{"manager", "admin"}

// OverrideInput is a manual override of a batch's status: one staff member asks,
// another (a manager or an admin) approves, with a written justification and a PDF of
// the evidence.
type OverrideInput struct {
	BatchID       string
	ToStatus      string
	RequesterID   string // staff record id
	ApproverID    string // staff record id of a different, active manager or admin
	Justification string
	Evidence      *PDF
}

// OverrideResult is the audit row written and the status change made.
type OverrideResult struct {
	AuditID string `json:"audit_id"`
	Change
}

func (in *OverrideInput) check() error {
	in.ToStatus = strings.TrimSpace(in.ToStatus)
	in.RequesterID = strings.TrimSpace(in.RequesterID)
	in.ApproverID = strings.TrimSpace(in.ApproverID)
	in.Justification = strings.TrimSpace(in.Justification)
	switch {
	case !IsStatus(in.ToStatus):
		return refuse("to_status", "The new status (to_status) must be released, failed or recalled, not %q.", in.ToStatus)
	case in.RequesterID == "":
		return refuse("requester", "requester is required: the staff id of the person asking for the override.")
	case in.ApproverID == "":
		return refuse("approver", "approver is required: the staff id of a manager or admin who approves the override.")
	case in.RequesterID == in.ApproverID:
		return refuse("approver", "The approver must be a different person from the requester: an override needs two people.")
	case utf8.RuneCountInString(in.Justification) < MinJustificationRunes:
		return refuse("justification", "justification is required: at least %d characters saying why the override is right.", MinJustificationRunes)
	case utf8.RuneCountInString(in.Justification) > 5000:
		return refuse("justification", "justification is longer than 5000 characters; put the detail in the evidence PDF.")
	}
	return checkPDF(in.Evidence, "evidence_pdf")
}

// OverrideStatus moves a batch to another status by hand: it checks the two people, the
// justification and the evidence, writes a manual_override_audit row and makes the
// change through Transition (history, ops event, hooks), all in one transaction (the
// caller's, when app is a transaction's app). A refused override writes nothing.
func OverrideStatus(app core.App, in OverrideInput, actor string, now time.Time) (OverrideResult, error) {
	if err := in.check(); err != nil {
		return OverrideResult{}, err
	}
	var res OverrideResult
	err := app.RunInTransaction(func(txApp core.App) error {
		batch, err := findBatch(txApp, in.BatchID)
		if err != nil {
			return err
		}
		code, from := batch.GetString("code"), batch.GetString("status")
		if err := checkOverridePeople(txApp, in.RequesterID, in.ApproverID); err != nil {
			return err
		}
		if from == in.ToStatus {
			return fmt.Errorf("batch %s is already %s: %w", code, from, ErrNothingToOverride)
		}
		if !CanTransition(from, in.ToStatus) {
			return &TransitionError{Code: code, From: from, To: in.ToStatus}
		}
		res.AuditID, err = saveOverrideAudit(txApp, batch, in)
		if err != nil {
			return err
		}
		reason := fmt.Sprintf("Manual override %s, requested by staff:%s and approved by staff:%s: %s",
			res.AuditID, in.RequesterID, in.ApproverID, in.Justification)
		res.Change, err = Transition(txApp, in.BatchID, in.ToStatus, actor, reason, "", now)
		return err
	})
	return res, err
}

// checkOverridePeople refuses a requester who is not active staff and an approver who
// is not an active manager or admin.
func checkOverridePeople(txApp core.App, requesterID, approverID string) error {
	requester, err := findStaff(txApp, requesterID, "requester")
	if err != nil {
		return err
	}
	if !requester.GetBool("active") {
		return refuse("requester", "requester %s is not an active staff member.", requesterID)
	}
	approver, err := findStaff(txApp, approverID, "approver")
	if err != nil {
		return err
	}
	if !approver.GetBool("active") {
		return refuse("approver", "approver %s is not an active staff member.", approverID)
	}
	role := approver.GetString("role")
	for _, r := range approverRoles {
		if role == r {
			return nil
		}
	}
	return refuse("approver", "approver %s is a %s: only a manager or an admin can approve an override.", approverID, role)
}

func findStaff(txApp core.App, id, what string) (*core.Record, error) {
	rec, err := txApp.FindRecordById("staff", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, refuse(what, "%s %q is not a staff member's id.", what, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, id, err)
	}
	return rec, nil
}

func saveOverrideAudit(txApp core.App, batch *core.Record, in OverrideInput) (string, error) {
	col, err := txApp.FindCachedCollectionByNameOrId("manual_override_audit")
	if err != nil {
		return "", err
	}
	f, err := in.Evidence.file("override-evidence")
	if err != nil {
		return "", fmt.Errorf("override evidence: %w", err)
	}
	rec := core.NewRecord(col)
	rec.Set("batch", batch.Id)
	rec.Set("batch_code", batch.GetString("code"))
	rec.Set("from_status", batch.GetString("status"))
	rec.Set("to_status", in.ToStatus)
	rec.Set("requester", in.RequesterID)
	rec.Set("approver", in.ApproverID)
	rec.Set("justification", in.Justification)
	rec.Set("evidence_pdf", f)
	if err := txApp.Save(rec); err != nil {
		return "", fmt.Errorf("save override audit for batch %s: %w", batch.GetString("code"), err)
	}
	return rec.Id, nil
}
