// Package outbox is everything opspine emails: app/ code enqueues a rendered email
// into email_outbox (inside its own transaction when it wants the email to exist
// exactly when its state change does) and never sends inline; the Sender, run by the
// email-outbox-send job, delivers due rows over SMTP with retries, backoff and a dead
// end a person can see and replay.
//
// Exactly once: an email is claimed (state sending) and committed before any network
// call, its Message-ID is fixed at enqueue, and the moment the message starts to be
// handed over (SMTP DATA) is committed too. Whatever fails before that moment is
// retried; whatever is uncertain after it (the server may have the message) goes to
// dead with a note for a person, never back to the queue.
package outbox

import "errors"

// States of an email_outbox row.
const (
	StatePending = "pending"
	StateSending = "sending"
	StateSent    = "sent"
	StateFailed  = "failed"
	StateDead    = "dead"
)

// Email is one email to enqueue.
type Email struct {
	// To and Cc are RFC 5322 addresses ("ops@example.com" or "Ann Lee <ann@example.com>").
	To []string
	Cc []string
	// Template names templates/email/<Template>.txt.tmpl and .html.tmpl; either may be
	// missing but not both. The text one defines the subject in a "subject" block.
	Template string
	// Data is what the template renders, as .Data (its type is documented in the
	// template, e.g. templates.CopackerLabel).
	Data any
	// Brand is the brand name the templates show as .Brand: Config.BrandName.
	Brand string
	// Subject, when set, replaces the template's subject.
	Subject string
	// IdempotencyKey identifies the email for its whole life: enqueueing the same key
	// again returns the first email and changes nothing. Name what the email is about,
	// e.g. "copacker_label:<batch id>".
	IdempotencyKey string
	// Attachments are stored as files on the record.
	Attachments []Attachment
}

// Attachment is one file sent with an email.
type Attachment struct {
	Name string
	// ContentType defaults to the type of Name's extension, then to the content's.
	ContentType string
	Content     []byte
}

// Errors of Enqueue and Replay.
var (
	ErrInvalidEmail    = errors.New("outbox: invalid email")
	ErrUnknownTemplate = errors.New("outbox: no such email template")
	ErrEmailNotFound   = errors.New("outbox: no such email in email_outbox")
	ErrNotReplayable   = errors.New("outbox: only a failed or dead email can be replayed")
)

const collection = "email_outbox"
