package labmail

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/settings"
)

// MinConfidence is the parse confidence below which a report is quarantined.
var MinConfidence = settings.Register(settings.Setting{
	Key: "lab_parse_min_confidence", Default: 0.8, Unit: "0..1",
	Description: "Lab emails: a report parsed with less confidence than this is quarantined for a person to check. Default 0.8.",
})

// ActorLabEmail is who records results read from lab emails.
const ActorLabEmail = "lab-email"

// Errors of ProcessEmail.
var (
	ErrNoSuchEmail = errors.New("no such lab email")
	// ErrCannotAttach: a hand attach found nothing in the email to record.
	ErrCannotAttach = errors.New("cannot attach the email")
)

// Outcome is what processing did with one email.
type Outcome struct {
	EmailID     string  `json:"id"`
	State       string  `json:"state"`
	Reason      string  `json:"reason,omitempty"`
	BatchID     string  `json:"batch_id,omitempty"`
	BatchCode   string  `json:"batch_code,omitempty"`
	LabResultID string  `json:"lab_result_id,omitempty"`
	BatchStatus string  `json:"batch_status,omitempty"`
	Confidence  float64 `json:"confidence"`
	AlertID     string  `json:"alert_id,omitempty"`
}

// Options of ProcessEmail.
type Options struct {
	Actor string
	Now   time.Time
	// BatchID attaches the email to this batch by hand: no batch code or confidence
	// threshold is needed, but the report must still give at least one result.
	BatchID string
	// Again processes an email that was processed or ignored before (staff reprocess).
	Again bool
}

// ProcessEmail reads a stored email's PDFs and records their results, or quarantines the
// email with the reason. It is idempotent: a processed email is left alone (unless
// Again), and recording the same PDF twice is detected by batches.RecordLabResult. An
// error means the email could not be handled now (it is marked failed for a retry); a
// quarantine is not an error.
func ProcessEmail(app core.App, id string, o Options) (Outcome, error) {
	if o.Actor == "" {
		o.Actor = ActorLabEmail
	}
	o.Now = o.Now.UTC()
	rec, err := app.FindRecordById(CollectionEmails, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Outcome{}, fmt.Errorf("lab email %q: %w", id, ErrNoSuchEmail)
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("labmail: read email %s: %w", id, err)
	}
	out := Outcome{EmailID: id, State: rec.GetString("state"), Reason: rec.GetString("reason"),
		BatchID: rec.GetString("batch"), LabResultID: rec.GetString("lab_result"), Confidence: rec.GetFloat("parse_confidence")}
	if !o.Again && o.BatchID == "" && (out.State == StateProcessed || out.State == StateIgnored) {
		return out, nil
	}
	out, err = processStored(app, rec, o)
	if err != nil {
		if o.BatchID == "" && !errors.Is(err, ErrCannotAttach) {
			rec.Set("state", StateFailed)
			rec.Set("reason", clip("Could not process now, will retry: "+err.Error(), 1900))
			if serr := app.Save(rec); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		return out, err
	}
	return out, nil
}

func processStored(app core.App, rec *core.Record, o Options) (Outcome, error) {
	out := Outcome{EmailID: rec.Id}
	pdfs, err := storedPDFs(app, rec)
	if err != nil {
		return out, err
	}
	if len(pdfs) == 0 {
		if o.BatchID != "" {
			return out, fmt.Errorf("%w: it has no PDF attachment", ErrCannotAttach)
		}
		return out, settle(app, rec, &out, StateIgnored, "no PDF attachment", o.Now)
	}
	patterns, err := LoadPatterns(app)
	if err != nil {
		return out, err
	}
	var texts []string
	var reasons []string
	for _, p := range pdfs {
		text, terr := ExtractPDFText(p.Data)
		if terr != nil {
			reason := p.Name + ": " + pdfReason(terr)
			if o.BatchID != "" {
				return out, fmt.Errorf("%w: %s", ErrCannotAttach, reason)
			}
			reasons = append(reasons, reason)
			continue
		}
		texts = append(texts, "== "+p.Name+" ==\n"+text)
		reason, err := recordPDF(app, rec, p, text, patterns, o, &out)
		if err != nil {
			return out, err
		}
		if reason != "" {
			reasons = append(reasons, p.Name+": "+reason)
		}
	}
	rec.Set("extracted_text", clip(strings.Join(texts, "\n\n"), 500_000))
	if len(reasons) > 0 {
		return out, settle(app, rec, &out, StateQuarantined, strings.Join(reasons, "; "), o.Now)
	}
	return out, settle(app, rec, &out, StateProcessed, "", o.Now)
}

func pdfReason(err error) string {
	if errors.Is(err, ErrNoTextLayer) {
		return ErrNoTextLayer.Error()
	}
	return "could not read the PDF (" + strings.TrimPrefix(err.Error(), "labmail: ") + ")"
}

// recordPDF parses one PDF's text and records its result; a non-empty reason quarantines.
func recordPDF(app core.App, rec *core.Record, p batches.PDF, text string, patterns []Pattern, o Options, out *Outcome) (string, error) {
	rep, err := ParseWithPatterns(text, rec.GetString("from_address"), patterns)
	if err != nil {
		if o.BatchID != "" {
			return "", fmt.Errorf("%w: %v", ErrCannotAttach, err)
		}
		return err.Error(), nil
	}
	out.Confidence = rep.Confidence
	rec.Set("parse_confidence", rep.Confidence)
	rec.Set("lab", clip(rep.Lab, 200))
	batch, reason, err := batchOf(app, rep, o)
	if err != nil || reason != "" {
		return reason, err
	}
	out.BatchID, out.BatchCode = batch.Id, batch.GetString("code")
	rec.Set("batch", batch.Id)
	if rep.Salmonella == "" && rep.Listeria == "" && !rep.EnterobacteriaceaeTested {
		if o.BatchID != "" {
			return "", fmt.Errorf("%w: no test result could be read from %s (%s); enter the result by hand in lab_results", ErrCannotAttach, p.Name, strings.Join(rep.Problems, "; "))
		}
		return "no test result found (" + strings.Join(rep.Problems, "; ") + ")", nil
	}
	if min := MinConfidence.Value(app.DB()); o.BatchID == "" && rep.Confidence < min {
		return fmt.Sprintf("parse confidence %.2f is below %.2f (%s)", rep.Confidence, min, strings.Join(rep.Problems, "; ")), nil
	}
	a, err := batches.RecordLabResult(app, batch.Id, batches.LabResultInput{
		Lab: rep.Lab, Findings: rep.Findings, ReportedAt: rec.GetDateTime("received_at").Time(),
		ReportPDF: &p, Source: batches.SourceEmail, Confidence: rep.Confidence,
	}, o.Actor, o.Now)
	if ie, ok := errors.AsType[*batches.InputError](err); ok {
		if o.BatchID != "" {
			return "", fmt.Errorf("%w: %s", ErrCannotAttach, ie.Message)
		}
		return "the result was refused: " + ie.Message, nil
	}
	if err != nil {
		return "", fmt.Errorf("labmail: record lab result for %s: %w", out.BatchCode, err)
	}
	out.LabResultID, out.BatchStatus = a.LabResultID, a.Status
	rec.Set("lab_result", a.LabResultID)
	return "", nil
}

// batchOf is the batch a report is for: the one given by hand, or the one its batch
// code names, which must be on QA hold.
func batchOf(app core.App, rep Report, o Options) (*core.Record, string, error) {
	if o.BatchID != "" {
		b, err := app.FindRecordById("batches", o.BatchID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, "", fmt.Errorf("%w: no batch with id %q", ErrCannotAttach, o.BatchID)
		}
		return b, "", err
	}
	code := rep.BatchCode()
	switch {
	case len(rep.BatchCodes) == 0:
		return nil, "no batch code found in the report", nil
	case code == "":
		return nil, "several batch codes in one report (" + strings.Join(rep.BatchCodes, ", ") + "); attach it by hand", nil
	}
	b, err := app.FindFirstRecordByData("batches", "code", code)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Sprintf("batch %s is not known", code), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("labmail: find batch %s: %w", code, err)
	}
	if st := b.GetString("status"); st != batches.StatusQAHold {
		return nil, fmt.Sprintf("batch %s is %s, not on qa_hold", code, st), nil
	}
	return b, "", nil
}

// settle saves the email's new state; a quarantine raises a warning alert, anything else
// closes the email's alert.
func settle(app core.App, rec *core.Record, out *Outcome, state, reason string, now time.Time) error {
	out.State, out.Reason = state, reason
	rec.Set("state", state)
	rec.Set("reason", clip(reason, 1900))
	rec.Set("processed_at", now)
	if err := app.Save(rec); err != nil {
		return fmt.Errorf("labmail: save email %s: %w", rec.Id, err)
	}
	key := "lab-email-quarantined:" + rec.Id
	if state != StateQuarantined {
		_, err := alerts.Resolve(app.DB(), now, key)
		return err
	}
	id, _, err := alerts.Raise(app.DB(), now, alerts.Alert{
		Severity: alerts.Warning, Title: "A lab email is quarantined",
		Body:        reason + ". Fix the lab's pattern in lab_pdf_patterns and reprocess (POST /api/ops/lab-emails/" + rec.Id + "/reprocess), or attach it to a batch by hand (POST /api/ops/lab-emails/" + rec.Id + "/attach).",
		SourceCheck: "lab-email-poll", DedupeKey: key,
		Fields: []alerts.Field{
			{Label: "From", Value: clip(rec.GetString("from_address"), 100)},
			{Label: "Subject", Value: clip(rec.GetString("subject"), 150)},
			{Label: "Reason", Value: clip(reason, 300)},
		},
	})
	out.AlertID = id
	return err
}
