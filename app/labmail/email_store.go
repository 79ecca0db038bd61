// Package labmail takes lab reports that arrive by email (SOP-LAB-01 §3.2): it polls a
// mailbox over IMAP, stores each message first (lab_emails), reads the PDF's text,
// parses it with the lab's patterns (lab_pdf_patterns) and records the result through
// the batches release rule, or quarantines the email with a reason staff can act on.
package labmail

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"

	"github.com/opspine/opspine/app/batches"
)

// States of a lab email.
const (
	StateReceived    = "received"
	StateProcessed   = "processed"
	StateQuarantined = "quarantined"
	StateIgnored     = "ignored"
	StateFailed      = "failed"
)

// Collection names.
const (
	CollectionEmails   = "lab_emails"
	CollectionPatterns = "lab_pdf_patterns"
	CollectionMailbox  = "lab_mailbox_state"
)

// Limits of what one email may carry.
const (
	maxAttachments    = 10
	maxAttachmentSize = batches.MaxPDFBytes
)

// Attachment is one file of an email.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// IsPDF reports whether the attachment is a PDF by its content.
func (a Attachment) IsPDF() bool { return batches.IsPDF(a.Data) }

// Message is a lab email as read from the mailbox.
type Message struct {
	MessageID   string
	From        string
	Subject     string
	ReceivedAt  time.Time
	BodyText    string
	Attachments []Attachment
	MailboxUID  uint32
	// Refused, when set, is why the message was not downloaded; it is stored quarantined.
	Refused string
}

// pdfHashes are the SHA-256 of the message's PDF attachments.
func (m Message) pdfHashes() []string {
	var out []string
	for _, a := range m.Attachments {
		if a.IsPDF() {
			out = append(out, batches.SHA256Hex(a.Data))
		}
	}
	return out
}

// Stored is the lab_emails row of a message.
type Stored struct {
	ID    string
	State string
	// New is false when the same Message-ID or PDF was stored before: nothing was written.
	New bool
}

// StoreEmail stores a message in lab_emails before anything else is done with it, so
// that a crash or a parse failure never loses it. A message with the same Message-ID,
// or carrying a PDF already stored, is not stored again: the answer is the first row.
// A message without a PDF is stored as ignored.
func StoreEmail(app core.App, msg Message, now time.Time) (Stored, error) {
	msg.MessageID = strings.TrimSpace(msg.MessageID)
	if msg.MessageID == "" {
		return Stored{}, errors.New("labmail: store email: no Message-ID")
	}
	hashes := msg.pdfHashes()
	var st Stored
	err := app.RunInTransaction(func(txApp core.App) error {
		existing, err := findSameEmail(txApp, msg.MessageID, hashes)
		if err != nil {
			return err
		}
		if existing != nil {
			st = Stored{ID: existing.Id, State: existing.GetString("state")}
			return nil
		}
		col, err := txApp.FindCachedCollectionByNameOrId(CollectionEmails)
		if err != nil {
			return err
		}
		rec := core.NewRecord(col)
		rec.Set("message_id", clip(msg.MessageID, 900))
		rec.Set("from_address", clip(msg.From, 500))
		rec.Set("subject", clip(msg.Subject, 1000))
		rec.Set("body_text", clip(msg.BodyText, 100_000))
		if !msg.ReceivedAt.IsZero() {
			rec.Set("received_at", msg.ReceivedAt.UTC())
		} else {
			rec.Set("received_at", now.UTC())
		}
		rec.Set("pdf_sha256", hashes)
		rec.Set("mailbox_uid", msg.MailboxUID)
		state, reason := StateReceived, ""
		switch {
		case msg.Refused != "":
			state, reason = StateQuarantined, msg.Refused
		case len(hashes) == 0:
			state, reason = StateIgnored, "no PDF attachment"
		}
		rec.Set("state", state)
		rec.Set("reason", reason)
		var files []*filesystem.File
		for i, a := range msg.Attachments {
			if i >= maxAttachments || len(a.Data) > maxAttachmentSize {
				continue
			}
			name := a.Name
			if strings.TrimSpace(name) == "" {
				name = fmt.Sprintf("attachment-%d", i+1)
			}
			f, err := filesystem.NewFileFromBytes(a.Data, name)
			if err != nil {
				return fmt.Errorf("labmail: attachment %q: %w", name, err)
			}
			files = append(files, f)
		}
		if len(files) > 0 {
			rec.Set("attachments", files)
		}
		if err := txApp.Save(rec); err != nil {
			return fmt.Errorf("labmail: store email %s: %w", msg.MessageID, err)
		}
		st = Stored{ID: rec.Id, State: state, New: true}
		return nil
	})
	return st, err
}

// findSameEmail is the lab_emails row with this Message-ID or one of these PDF hashes.
func findSameEmail(app core.App, messageID string, hashes []string) (*core.Record, error) {
	rec, err := app.FindFirstRecordByData(CollectionEmails, "message_id", messageID)
	if err == nil {
		return rec, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("labmail: find email by Message-ID: %w", err)
	}
	for _, h := range hashes {
		var id string
		err := app.DB().NewQuery(`SELECT lab_emails.id FROM lab_emails, json_each(lab_emails.pdf_sha256) j
			WHERE json_valid(lab_emails.pdf_sha256) AND j.value = {:h} LIMIT 1`).Bind(dbx.Params{"h": h}).Row(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("labmail: find email by PDF hash: %w", err)
		}
		return app.FindRecordById(CollectionEmails, id)
	}
	return nil, nil
}

// storedPDFs reads the PDF attachments of a stored email back from storage.
func storedPDFs(app core.App, rec *core.Record) ([]batches.PDF, error) {
	fsys, err := app.NewFilesystem()
	if err != nil {
		return nil, fmt.Errorf("labmail: open storage: %w", err)
	}
	defer fsys.Close()
	var out []batches.PDF
	for _, name := range rec.GetStringSlice("attachments") {
		r, err := fsys.GetReader(rec.BaseFilesPath() + "/" + name)
		if err != nil {
			return nil, fmt.Errorf("labmail: read attachment %s: %w", name, err)
		}
		data, err := io.ReadAll(io.LimitReader(r, maxAttachmentSize+1))
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("labmail: read attachment %s: %w", name, err)
		}
		if batches.IsPDF(data) {
			out = append(out, batches.PDF{Name: originalName(name), Data: data})
		}
	}
	return out, nil
}

// originalName drops the random suffix PocketBase adds to stored file names.
func originalName(stored string) string {
	dot := strings.LastIndexByte(stored, '.')
	base, ext := stored, ""
	if dot > 0 {
		base, ext = stored[:dot], stored[dot:]
	}
	if i := strings.LastIndexByte(base, '_'); i > 0 && len(base)-i == 11 {
		base = base[:i]
	}
	return base + ext
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
