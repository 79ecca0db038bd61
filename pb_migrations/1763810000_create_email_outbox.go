package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// email_outbox is every email opspine sends: app/ code enqueues a rendered row, the
// email-outbox-send job sends it (SOP-05). Staff read it in the admin UI; a person
// replays a dead one through POST /api/ops/emails/{id}/retry.
func init() {
	m.Register(createEmailOutbox, dropCollections("email_outbox"))
}

func createEmailOutbox(app core.App) error {
	c := core.NewBaseCollection("email_outbox")
	c.Fields.Add(
		requiredText("to", "Recipients, comma separated"),
		textField("cc", "Copy recipients, comma separated"),
		requiredText("subject", ""),
		longText("text_body", "Plain-text body, rendered from the template at enqueue"),
		longText("html_body", "HTML body, rendered from the template at enqueue"),
		&core.FileField{Name: "attachments", MaxSelect: 10, MaxSize: 20 << 20, Protected: true,
			Help: "Files sent with the email"},
		jsonField("attachment_meta", "Name and content type each attachment is sent with, by stored file name"),
		textField("template", "Template the bodies were rendered from (templates/email/<name>.*.tmpl)"),
		requiredText("idempotency_key", "Enqueueing the same key again returns this email instead of a second one"),
		selectField("state", "pending → sending → sent; failed is retried with backoff; dead needs a person (replay it once you know why)",
			"pending", "sending", "sent", "failed", "dead"),
		nonNegativeInt("attempts", "Send attempts so far"),
		dateField("next_attempt_at", "When the sender tries a pending or failed email"),
		longText("last_error", "What the SMTP server or the network said at the last failure"),
		textField("provider_message_id", "What the SMTP server answered when it accepted the email (usually its queue id)"),
		requiredText("message_id", "Message-ID header, fixed at enqueue: every attempt sends the same one"),
		dateField("claimed_at", "When the sender took the email for its current attempt"),
		dateField("data_started_at", "When the sender began handing the message over (SMTP DATA); set on an email that is not sent means it may have arrived"),
		dateField("sent_at", "When the SMTP server accepted the email"),
	)
	c.Fields.Add(timestamps()...)
	c.AddIndex("idx_email_outbox_idempotency_key", true, "idempotency_key", "")
	c.AddIndex("idx_email_outbox_due", false, "state, next_attempt_at", "")
	c.AddIndex("idx_email_outbox_state_created", false, "state, created", "")
	readableByStaff(c)
	return app.Save(c)
}
