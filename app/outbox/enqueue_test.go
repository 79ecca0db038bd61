package outbox_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/app/testkit"
	"github.com/opspine/opspine/templates"
)

func TestEnqueueRendersTheTemplateAndStoresTheEmailPendingWithItsAttachment(t *testing.T) {
	t.Parallel()
	app := testkit.NewApp(t)
	id, created, err := outbox.Enqueue(app, t0, labelEmail("copacker_label:batch-1"))
	if err != nil || !created {
		t.Fatalf("enqueue: id %q created %v err %v", id, created, err)
	}
	rec, err := app.FindRecordById("email_outbox", id)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ field, want string }{
		{"to", "\"Production Desk\" <production@copacker.test>"},
		{"cc", "qa@protocol-raw.test"},
		{"subject", "New batch label for PR-261121-001"},
		{"template", "copacker_label"},
		{"state", "pending"},
		{"idempotency_key", "copacker_label:batch-1"},
	}
	for _, c := range checks {
		if got := rec.GetString(c.field); got != c.want {
			t.Errorf("%s = %q, want %q", c.field, got, c.want)
		}
	}
	for _, body := range []string{rec.GetString("text_body"), rec.GetString("html_body")} {
		for _, part := range []string{"PR-261121-001", "512.5", "Saturday 21 November 2026", "Protocol Raw operations", "https://proof.protocol-raw.test/b/7f3a9c"} {
			if !strings.Contains(body, part) {
				t.Errorf("body lacks %q:\n%s", part, body)
			}
		}
	}
	if !strings.Contains(rec.GetString("html_body"), `<a href="https://proof.protocol-raw.test/b/7f3a9c">`) {
		t.Errorf("the HTML body has no link to the proof page")
	}
	if got := rec.GetDateTime("next_attempt_at").Time(); !got.Equal(t0) {
		t.Errorf("next_attempt_at %s, want the enqueue time %s", got, t0)
	}
	if got := rec.GetDateTime("created").Time(); !got.Equal(t0) {
		t.Errorf("created %s, want the enqueue time on the caller's clock %s", got, t0)
	}
	if mid := rec.GetString("message_id"); !strings.Contains(mid, "@") || strings.ContainsAny(mid, "<> ") {
		t.Errorf("message_id %q is not an RFC 5322 id", mid)
	}

	files := rec.GetStringSlice("attachments")
	if len(files) != 1 {
		t.Fatalf("attachments %v, want one file", files)
	}
	fsys, err := app.NewFilesystem()
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	r, err := fsys.GetReader(rec.BaseFilesPath() + "/" + files[0])
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(r)
	r.Close()
	if string(stored) != string(labelPDF) {
		t.Errorf("stored attachment differs from the PDF enqueued")
	}
	if meta := rec.GetString("attachment_meta"); !strings.Contains(meta, `"name":"PR-261121-001-label.pdf"`) || !strings.Contains(meta, `"content_type":"application/pdf"`) {
		t.Errorf("attachment_meta %s lacks the original name and type", meta)
	}
}

func TestEnqueueTheSameIdempotencyKeyAgainReturnsTheFirstEmailAndChangesNothing(t *testing.T) {
	t.Parallel()
	app := testkit.NewApp(t)
	first, created, err := outbox.Enqueue(app, t0, labelEmail("copacker_label:batch-2"))
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	again := labelEmail("copacker_label:batch-2")
	again.Subject = "Something else"
	second, created, err := outbox.Enqueue(app, t0.Add(time.Hour), again)
	if err != nil || created || second != first {
		t.Fatalf("second: id %s (first %s) created %v err %v", second, first, created, err)
	}
	if n := testkit.Count(t, app, "email_outbox", "", nil); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
	rec, _ := app.FindRecordById("email_outbox", first)
	if rec.GetString("subject") != "New batch label for PR-261121-001" {
		t.Errorf("the second enqueue changed the subject to %q", rec.GetString("subject"))
	}
}

func TestEnqueueRejectsWhatItCannotSendAndWritesNothing(t *testing.T) {
	t.Parallel()
	app := testkit.NewApp(t)
	cases := []struct {
		name    string
		edit    func(*outbox.Email)
		wantErr error
		errPart string
	}{
		{"bad address", func(e *outbox.Email) { e.To = []string{"production at copacker"} }, outbox.ErrInvalidEmail, "production at copacker"},
		{"bad cc", func(e *outbox.Email) { e.Cc = []string{"qa@"} }, outbox.ErrInvalidEmail, `"qa@"`},
		{"no recipient", func(e *outbox.Email) { e.To = nil }, outbox.ErrInvalidEmail, "no To address"},
		{"header injection", func(e *outbox.Email) { e.To = []string{"a@b.test\r\nBcc: c@d.test"} }, outbox.ErrInvalidEmail, "address"},
		{"unknown template", func(e *outbox.Email) { e.Template = "copacker_lable" }, outbox.ErrUnknownTemplate, "there are: copacker_label"},
		{"data of the wrong type", func(e *outbox.Email) { e.Data = map[string]any{"BatchCode": "PR-1"} }, nil, "copacker_label"},
		{"no data", func(e *outbox.Email) { e.Data = nil }, nil, "copacker_label"},
		{"no idempotency key", func(e *outbox.Email) { e.IdempotencyKey = " " }, outbox.ErrInvalidEmail, "IdempotencyKey"},
		{"no brand", func(e *outbox.Email) { e.Brand = "" }, outbox.ErrInvalidEmail, "Brand"},
		{"empty attachment", func(e *outbox.Email) { e.Attachments[0].Content = nil }, outbox.ErrInvalidEmail, "is empty"},
		{"unnamed attachment", func(e *outbox.Email) { e.Attachments[0].Name = "" }, outbox.ErrInvalidEmail, "no name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := labelEmail("bad:" + c.name)
			c.edit(&e)
			_, _, err := outbox.Enqueue(app, t0, e)
			if err == nil {
				t.Fatal("enqueued, want an error")
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("error %v, want %v", err, c.wantErr)
			}
			if !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("error %q does not say %q", err, c.errPart)
			}
		})
	}
	if n := testkit.Count(t, app, "email_outbox", "", nil); n != 0 {
		t.Errorf("%d rows written by rejected emails", n)
	}
}

func TestEnqueueInACallersTransactionCommitsAndRollsBackWithIt(t *testing.T) {
	t.Parallel()
	app := testkit.NewApp(t)
	stateChange := errors.New("the batch could not be saved")
	err := app.RunInTransaction(func(txApp core.App) error {
		if _, _, err := outbox.Enqueue(txApp, t0, labelEmail("copacker_label:rolled-back")); err != nil {
			return err
		}
		return stateChange
	})
	if !errors.Is(err, stateChange) {
		t.Fatalf("transaction: %v", err)
	}
	if n := testkit.Count(t, app, "email_outbox", "", nil); n != 0 {
		t.Fatalf("%d emails after the rollback, want 0", n)
	}
	var id string
	err = app.RunInTransaction(func(txApp core.App) error {
		var err error
		id, _, err = outbox.Enqueue(txApp, t0, labelEmail("copacker_label:committed"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := testkit.Count(t, app, "email_outbox", "id = {:id} AND state = 'pending'", map[string]any{"id": id}); n != 1 {
		t.Fatalf("the committed email is not pending")
	}
}

func TestEveryEmailTemplateRendersWithItsData(t *testing.T) {
	t.Parallel()
	names, err := outbox.TemplateNames()
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]any{
		"copacker_label": templates.CopackerLabel{BatchCode: "PR-261121-002", ProducedOn: t0, KgProduced: 500, LabelFile: "label.pdf"},
	}
	app := testkit.NewApp(t)
	for _, name := range names {
		data, ok := samples[name]
		if !ok {
			t.Errorf("template %s has no sample data in this test", name)
			continue
		}
		e := outbox.Email{To: []string{"a@example.test"}, Template: name, Data: data, Brand: brand, IdempotencyKey: "sample:" + name}
		if _, _, err := outbox.Enqueue(app, t0, e); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !slices.Contains(names, "copacker_label") {
		t.Errorf("templates %v lack copacker_label", names)
	}
}
