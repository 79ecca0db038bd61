package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/opspine/opspine/app/labmail"
)

// Lab results by email (SOP-LAB-01 §3.2): every lab email is stored first (lab_emails,
// which is also the quarantine staff work from), parsed with per-lab patterns
// (lab_pdf_patterns, seeded with the built-in defaults), and the mailbox poll remembers
// where it stopped (lab_mailbox_state).
func init() {
	m.Register(createLabEmailCollections, dropCollections("lab_emails", "lab_pdf_patterns", "lab_mailbox_state"))
}

func createLabEmailCollections(app core.App) error {
	batches, err := app.FindCollectionByNameOrId("batches")
	if err != nil {
		return err
	}
	labResults, err := app.FindCollectionByNameOrId("lab_results")
	if err != nil {
		return err
	}

	emails := core.NewBaseCollection("lab_emails")
	emails.Fields.Add(
		requiredText("message_id", "The email's Message-ID; the same one again is not stored twice"),
		textField("from_address", "Sender"),
		textField("subject", "Subject"),
		dateField("received_at", "When the lab sent it (Date header, else the mailbox's arrival time)"),
		&core.FileField{Name: "attachments", MaxSelect: 10, MaxSize: 20 << 20, Help: "The email's attachments as received", Protected: true},
		jsonField("pdf_sha256", "SHA-256 of each PDF attachment; the same PDF again is not stored twice"),
		selectField("state", "received: stored, not yet read; processed: result recorded; quarantined: needs a person (see reason); ignored: no PDF; failed: will be retried",
			labmail.StateReceived, labmail.StateProcessed, labmail.StateQuarantined, labmail.StateIgnored, labmail.StateFailed),
		textField("reason", "Why the email is quarantined, ignored or failed, and what to do"),
		textField("lab", "The lab whose pattern read the report"),
		relationField("batch", "The batch the report is for", batches),
		relationField("lab_result", "The lab result recorded from it", labResults),
		&core.NumberField{Name: "parse_confidence", Help: "How sure the parser was, 0..1 (quarantined below the lab_parse_min_confidence setting)", Min: types.Pointer(0.0), Max: types.Pointer(1.0)},
		longText("extracted_text", "The text read from the PDF, for checking the parse and fixing a pattern"),
		longText("body_text", "The email's text body"),
		intField("mailbox_uid", "The message's IMAP UID when it was read"),
		dateField("processed_at", "When it was last processed"),
	)
	emails.Fields.Add(timestamps()...)
	emails.AddIndex("idx_lab_emails_message_id", true, "message_id", "")
	emails.AddIndex("idx_lab_emails_state", false, "state, created", "")
	readableByStaff(emails)

	patterns := core.NewBaseCollection("lab_pdf_patterns")
	patterns.Fields.Add(
		requiredText("lab_name", "The laboratory, as recorded on lab results"),
		textField("sender_match", "Part of the sender's address that picks this pattern (e.g. @alsglobal.com); empty: any sender"),
		textField("batch_code_regex", "Regular expression of the batch code on the report (a capture group, if any, is the code); empty: "+labmail.DefaultBatchCodeRegexp),
		textField("salmonella_pattern", "Regular expression of the Salmonella row's label; the result is read after it (or from its capture group)"),
		textField("listeria_pattern", "Regular expression of the Listeria row's label"),
		textField("enterobacteriaceae_pattern", "Regular expression of the Enterobacteriaceae row's label; its count is read after it"),
		&core.SelectField{Name: "unit", Help: "How the report writes counts", Values: []string{labmail.UnitCFUPerG, labmail.UnitLog10CFUPerG}, MaxSelect: 1},
		boolField("active", "Used by the parser"),
		textField("notes", "Notes"),
	)
	patterns.Fields.Add(timestamps()...)
	readableByStaff(patterns)

	state := core.NewBaseCollection("lab_mailbox_state")
	state.Fields.Add(
		requiredText("mailbox_key", "user@host:port/mailbox"),
		intField("uid_validity", "The mailbox's UIDVALIDITY when last read; a change reads the mailbox again from the start"),
		intField("last_uid", "The last UID fully handled"),
		dateField("last_poll_at", "Last poll"),
		dateField("last_success_at", "Last poll that ended without error"),
		textField("last_error", "Error of the last poll, if any"),
	)
	state.Fields.Add(timestamps()...)
	state.AddIndex("idx_lab_mailbox_state_key", true, "mailbox_key", "")
	readableByStaff(state)

	if err := saveAll(app, emails, patterns, state); err != nil {
		return err
	}
	for _, p := range labmail.BuiltinPatterns() {
		rec := core.NewRecord(patterns)
		rec.Set("lab_name", p.LabName)
		rec.Set("sender_match", p.SenderMatch)
		rec.Set("batch_code_regex", p.BatchCodeRegexp)
		rec.Set("salmonella_pattern", p.SalmonellaRegexp)
		rec.Set("listeria_pattern", p.ListeriaRegexp)
		rec.Set("enterobacteriaceae_pattern", p.EnterobacteriaRegexp)
		rec.Set("unit", p.Unit)
		rec.Set("active", true)
		rec.Set("notes", "Built-in default: reads \"Not Detected in 25g\", \"Absent\", \"Detected\", \"<10 cfu/g\", \"1.2 x 10^2 cfu/g\", \"1.2E+02\".")
		if err := app.Save(rec); err != nil {
			return err
		}
	}
	return nil
}
