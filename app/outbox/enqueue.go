package outbox

import (
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"
	"github.com/pocketbase/pocketbase/tools/types"
)

// maxRecipients bounds To and Cc together; an email to more people is a mailing, not
// an operational message.
const maxRecipients = 50

// attachmentMeta is how an attachment is sent: the record keeps the file under a
// normalised unique name, the email shows the name it was given.
type attachmentMeta struct {
	File        string `json:"file"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
}

// Enqueue validates e, renders its templates and stores it pending, to be sent by the
// email-outbox-send job; it returns the row's id and whether this call created it.
// The same IdempotencyKey again returns the existing row and changes nothing. A bad
// address, an unknown template or data the template cannot render is an error and
// nothing is written. Pass the caller's txApp to enqueue atomically with a state
// change: the email then exists exactly when the change does.
func Enqueue(app core.App, now time.Time, e Email) (id string, created bool, err error) {
	to, cc, err := e.recipients()
	if err != nil {
		return "", false, err
	}
	if strings.TrimSpace(e.IdempotencyKey) == "" {
		return "", false, fmt.Errorf("%w: IdempotencyKey is empty; name what the email is about, e.g. copacker_label:<batch id>", ErrInvalidEmail)
	}
	if strings.TrimSpace(e.Brand) == "" {
		return "", false, fmt.Errorf("%w: Brand is empty; pass Config.BrandName", ErrInvalidEmail)
	}
	body, err := render(e.Template, e.Brand, e.Data, e.Subject)
	if err != nil {
		return "", false, err
	}
	files, meta, err := attachmentFiles(e.Attachments)
	if err != nil {
		return "", false, err
	}
	col, err := app.FindCachedCollectionByNameOrId(collection)
	if err != nil {
		return "", false, fmt.Errorf("outbox: enqueue: %w", err)
	}
	err = app.RunInTransaction(func(txApp core.App) error {
		existing, err := findByIdempotencyKey(txApp.DB(), e.IdempotencyKey)
		if err != nil || existing != "" {
			id = existing
			return err
		}
		ts, err := types.ParseDateTime(now.UTC())
		if err != nil {
			return err
		}
		rec := core.NewRecord(col)
		rec.Set("to", to)
		rec.Set("cc", cc)
		rec.Set("subject", body.Subject)
		rec.Set("text_body", body.Text)
		rec.Set("html_body", body.HTML)
		rec.Set("template", e.Template)
		rec.Set("idempotency_key", e.IdempotencyKey)
		rec.Set("state", StatePending)
		rec.Set("attempts", 0)
		rec.Set("next_attempt_at", ts)
		rec.Set("message_id", newMessageID(now))
		if len(files) > 0 {
			rec.Set("attachments", files)
			rec.Set("attachment_meta", meta)
		}
		// created is the enqueue time on the caller's clock: the email's Date header
		rec.SetRaw("created", ts)
		rec.SetRaw("updated", ts)
		if err := txApp.Save(rec); err != nil {
			return fmt.Errorf("outbox: enqueue %s: %w", e.IdempotencyKey, err)
		}
		id, created = rec.Id, true
		return nil
	})
	if err != nil {
		return "", false, err
	}
	return id, created, nil
}

func findByIdempotencyKey(db dbx.Builder, key string) (string, error) {
	var id string
	err := db.NewQuery(`SELECT id FROM email_outbox WHERE idempotency_key = {:key}`).Bind(dbx.Params{"key": key}).Row(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("outbox: look up idempotency key %s: %w", key, err)
	}
	return id, nil
}

// recipients checks every address and returns To and Cc as stored: comma separated,
// a bare address when it has no display name.
func (e Email) recipients() (to, cc string, err error) {
	if len(e.To) == 0 {
		return "", "", fmt.Errorf("%w: no To address", ErrInvalidEmail)
	}
	if len(e.To)+len(e.Cc) > maxRecipients {
		return "", "", fmt.Errorf("%w: %d recipients; at most %d", ErrInvalidEmail, len(e.To)+len(e.Cc), maxRecipients)
	}
	if to, err = addressList(e.To); err != nil {
		return "", "", err
	}
	cc, err = addressList(e.Cc)
	return to, cc, err
}

func addressList(in []string) (string, error) {
	out := make([]string, 0, len(in))
	for _, s := range in {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return "", fmt.Errorf("%w: address %q: %v", ErrInvalidEmail, s, err)
		}
		out = append(out, formatAddress(a))
	}
	return strings.Join(out, ", "), nil
}

func formatAddress(a *mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return a.String()
}

func attachmentFiles(in []Attachment) ([]*filesystem.File, []attachmentMeta, error) {
	files := make([]*filesystem.File, 0, len(in))
	meta := make([]attachmentMeta, 0, len(in))
	for _, a := range in {
		name := path.Base(strings.ReplaceAll(strings.TrimSpace(a.Name), `\`, "/"))
		if name == "" || name == "." || name == "/" {
			return nil, nil, fmt.Errorf("%w: an attachment has no name", ErrInvalidEmail)
		}
		if len(a.Content) == 0 {
			return nil, nil, fmt.Errorf("%w: attachment %s is empty", ErrInvalidEmail, name)
		}
		ct := a.ContentType
		if ct == "" {
			ct = mime.TypeByExtension(path.Ext(name))
		}
		if ct == "" {
			ct = http.DetectContentType(a.Content)
		}
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			return nil, nil, fmt.Errorf("%w: attachment %s: content type %q: %v", ErrInvalidEmail, name, ct, err)
		}
		f, err := filesystem.NewFileFromBytes(a.Content, name)
		if err != nil {
			return nil, nil, fmt.Errorf("outbox: attachment %s: %w", name, err)
		}
		files = append(files, f)
		meta = append(meta, attachmentMeta{File: f.Name, Name: name, ContentType: ct})
	}
	return files, meta, nil
}

// newMessageID returns a Message-ID (without the angle brackets) unique to one email:
// its time, 80 random bits and this host's name.
func newMessageID(now time.Time) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	r := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	host := localHostname()
	if host == "" {
		host = "localhost.localdomain"
	}
	return fmt.Sprintf("%s.%s@%s", now.UTC().Format("20060102150405"), r, host)
}

// localHostname is this machine's name when it is a fully qualified domain name, for
// Message-IDs and EHLO; "" when it is not.
func localHostname() string {
	h, err := os.Hostname()
	if err != nil || !strings.Contains(strings.Trim(h, "."), ".") ||
		strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
		return ""
	}
	return strings.ToLower(strings.Trim(h, "."))
}
