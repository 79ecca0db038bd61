package outbox_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/app/testkit"
	"github.com/opspine/opspine/jobs"
	"github.com/opspine/opspine/templates"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

const (
	brand    = "Protocol Raw"
	mailFrom = "ops@protocol-raw.test"
)

// labelPDF stands for a label PDF: binary bytes that must arrive unchanged.
var labelPDF = append([]byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n"), []byte{0, 1, 2, 0xfe, 0xff, '\r', '\n', '.', '\r', '\n'}...)

// start runs opspine with its SMTP settings pointing at fake (nil: no SMTP host).
func start(t *testing.T, fake *fakeSMTP, env map[string]string) *testkit.Server {
	t.Helper()
	base := map[string]string{"OPSPINE_BRAND_NAME": brand, "OPSPINE_SMTP_TIMEOUT": "2s"}
	if fake != nil {
		base["OPSPINE_SMTP_HOST"] = "127.0.0.1"
		base["OPSPINE_SMTP_PORT"] = strconv.Itoa(fake.Port)
		base["OPSPINE_SMTP_TLS"] = "none"
		base["OPSPINE_MAIL_FROM"] = mailFrom
	}
	for k, v := range env {
		base[k] = v
	}
	return testkit.StartServer(t, testkit.Config(t, base), t0)
}

// send runs the email-outbox-send job now, as the schedule would.
func send(t *testing.T, s *testkit.Server) monitor.Run {
	t.Helper()
	for {
		run, err := s.Spine.Scheduler.RunNow("email-outbox-send", "test")
		if errors.Is(err, jobs.ErrJobRunning) {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("run email-outbox-send: %v", err)
		}
		return run
	}
}

// sendOK runs the job and fails the test unless the run's outcome is ok.
func sendOK(t *testing.T, s *testkit.Server) monitor.Run {
	t.Helper()
	run := send(t, s)
	if run.Outcome != monitor.OutcomeOK {
		t.Fatalf("email-outbox-send: outcome %s: %s", run.Outcome, run.Error)
	}
	return run
}

type outboxRow struct {
	ID                string `db:"id"`
	State             string `db:"state"`
	Attempts          int    `db:"attempts"`
	LastError         string `db:"last_error"`
	ProviderMessageID string `db:"provider_message_id"`
	MessageID         string `db:"message_id"`
	NextAttemptAt     string `db:"next_attempt_at"`
	ClaimedAt         string `db:"claimed_at"`
	DataStartedAt     string `db:"data_started_at"`
	SentAt            string `db:"sent_at"`
}

func loadRow(t *testing.T, app core.App, id string) outboxRow {
	t.Helper()
	var r outboxRow
	err := app.DB().NewQuery(`SELECT id, state, attempts, last_error, provider_message_id, message_id, next_attempt_at,
		claimed_at, data_started_at, sent_at FROM email_outbox WHERE id = {:id}`).Bind(dbx.Params{"id": id}).One(&r)
	if err != nil {
		t.Fatalf("email %s: %v", id, err)
	}
	return r
}

// labelEmail is the co-packer's new-batch email with the label PDF attached.
func labelEmail(key string) outbox.Email {
	return outbox.Email{
		To:       []string{"Production Desk <production@copacker.test>"},
		Cc:       []string{"qa@protocol-raw.test"},
		Template: "copacker_label",
		Brand:    brand,
		Data: templates.CopackerLabel{BatchCode: "PR-261121-001", ProducedOn: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
			KgProduced: 512.5, LabelFile: "PR-261121-001-label.pdf", VerifyURL: "https://proof.protocol-raw.test/b/7f3a9c"},
		IdempotencyKey: key,
		Attachments:    []outbox.Attachment{{Name: "PR-261121-001-label.pdf", Content: labelPDF}},
	}
}

// enqueue enqueues e on the server's clock and returns the row id.
func enqueue(t *testing.T, s *testkit.Server, e outbox.Email) string {
	t.Helper()
	id, _, err := outbox.Enqueue(s.App, s.Clock.Now(), e)
	if err != nil {
		t.Fatalf("enqueue %s: %v", e.IdempotencyKey, err)
	}
	return id
}

func deadEvents(t *testing.T, app core.App, id string) int {
	t.Helper()
	return testkit.Count(t, app, "ops_events", "entity_type = 'email' AND entity_id = {:id} AND kind = 'email.dead'", map[string]any{"id": id})
}

func itoa(n int) string { return strconv.Itoa(n) }
