package outbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	netmail "net/mail"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/wneessen/go-mail"

	"github.com/opspine/opspine/app/sqlstore"
)

// emailRow is what the sender reads of an email_outbox row.
type emailRow struct {
	ID             string `db:"id"`
	To             string `db:"to"`
	Cc             string `db:"cc"`
	Subject        string `db:"subject"`
	TextBody       string `db:"text_body"`
	HTMLBody       string `db:"html_body"`
	Attachments    string `db:"attachments"`
	AttachmentMeta string `db:"attachment_meta"`
	IdempotencyKey string `db:"idempotency_key"`
	State          string `db:"state"`
	Attempts       int    `db:"attempts"`
	MessageID      string `db:"message_id"`
	Created        string `db:"created"`
}

func (r emailRow) hasAttachments() bool { return r.Attachments != "" && r.Attachments != "[]" }

// recipients returns the envelope recipients: every To and Cc address.
func (r emailRow) recipients() (to, cc []*netmail.Address, err error) {
	if to, err = netmail.ParseAddressList(r.To); err != nil {
		return nil, nil, fmt.Errorf("stored To %q: %w", r.To, err)
	}
	if r.Cc != "" {
		if cc, err = netmail.ParseAddressList(r.Cc); err != nil {
			return nil, nil, fmt.Errorf("stored Cc %q: %w", r.Cc, err)
		}
	}
	return to, cc, nil
}

// composeMessage builds the whole RFC 5322 message of row, before any connection, so
// that once DATA starts only bytes are written: multipart/alternative text and HTML,
// the attachments, the row's Message-ID and its enqueue time as Date.
func composeMessage(app core.App, row emailRow, from *netmail.Address) ([]byte, error) {
	to, cc, err := row.recipients()
	if err != nil {
		return nil, err
	}
	m := mail.NewMsg(mail.WithNoDefaultUserAgent())
	m.FromMailAddress(from)
	m.ToMailAddress(to...)
	if len(cc) > 0 {
		m.CcMailAddress(cc...)
	}
	m.Subject(row.Subject)
	m.SetMessageIDWithValue(row.MessageID)
	created, err := sqlstore.ParseTime(row.Created)
	if err != nil || created.IsZero() {
		created = time.Now()
	}
	m.SetDateWithValue(created.UTC())
	// RFC 3834: no out-of-office replies to a system's emails
	m.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	m.SetGenHeader(mail.HeaderXAutoResponseSuppress, "All")
	switch {
	case row.TextBody != "" && row.HTMLBody != "":
		m.SetBodyString(mail.TypeTextPlain, row.TextBody)
		m.AddAlternativeString(mail.TypeTextHTML, row.HTMLBody)
	case row.HTMLBody != "":
		m.SetBodyString(mail.TypeTextHTML, row.HTMLBody)
	default:
		m.SetBodyString(mail.TypeTextPlain, row.TextBody)
	}
	if row.hasAttachments() {
		if err := attach(app, m, row); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("compose the message: %w", err)
	}
	return buf.Bytes(), nil
}

// attach adds the row's stored files with the names and types they were enqueued with.
func attach(app core.App, m *mail.Msg, row emailRow) error {
	var files []string
	if err := json.Unmarshal([]byte(row.Attachments), &files); err != nil {
		return fmt.Errorf("stored attachments %q: %w", row.Attachments, err)
	}
	var meta []attachmentMeta
	if row.AttachmentMeta != "" && row.AttachmentMeta != "null" {
		if err := json.Unmarshal([]byte(row.AttachmentMeta), &meta); err != nil {
			return fmt.Errorf("stored attachment_meta: %w", err)
		}
	}
	col, err := app.FindCachedCollectionByNameOrId(collection)
	if err != nil {
		return err
	}
	fsys, err := app.NewFilesystem()
	if err != nil {
		return fmt.Errorf("open the file storage: %w", err)
	}
	defer fsys.Close()
	for _, file := range files {
		name, ct := file, ""
		for _, a := range meta {
			if a.File == file {
				name, ct = a.Name, a.ContentType
			}
		}
		r, err := fsys.GetReader(col.Id + "/" + row.ID + "/" + file)
		if err != nil {
			return fmt.Errorf("read attachment %s: %w", name, err)
		}
		content, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("read attachment %s: %w", name, err)
		}
		var opts []mail.FileOption
		if ct != "" {
			opts = append(opts, mail.WithFileContentType(mail.ContentType(ct)))
		}
		if err := m.AttachReader(name, bytes.NewReader(content), opts...); err != nil {
			return fmt.Errorf("attach %s: %w", name, err)
		}
	}
	return nil
}
