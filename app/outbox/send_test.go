package outbox_test

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/app/testkit"
)

func TestAnEnqueuedEmailArrivesOnceWithSubjectBrandBothPartsAndThePDF(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	id, created, err := s.Spine.EnqueueEmail(s.App, labelEmail("copacker_label:batch-1"))
	if err != nil || !created {
		t.Fatalf("enqueue: %v", err)
	}
	run := sendOK(t, s)
	if !strings.Contains(run.Summary, "1 due: 1 sent") {
		t.Errorf("summary %q", run.Summary)
	}
	sendOK(t, s) // a second run has nothing to do
	got := fake.messages()
	if len(got) != 1 {
		t.Fatalf("%d messages arrived, want 1", len(got))
	}
	row := loadRow(t, s.App, id)
	if row.State != "sent" || row.Attempts != 1 || row.SentAt == "" || !strings.Contains(row.ProviderMessageID, "queued as Q0001") {
		t.Errorf("row after sending: %+v", row)
	}
	m := got[0]
	if m.From != mailFrom {
		t.Errorf("envelope from %q", m.From)
	}
	if strings.Join(m.To, ",") != "production@copacker.test,qa@protocol-raw.test" {
		t.Errorf("envelope recipients %v, want To and Cc", m.To)
	}
	if m.MessageID != "<"+row.MessageID+">" {
		t.Errorf("Message-ID %s, want the one stored at enqueue <%s>", m.MessageID, row.MessageID)
	}
	msg := parseMIME(t, m.Raw)
	h := msg.Header
	if h.Get("Subject") != "New batch label for PR-261121-001" {
		t.Errorf("Subject %q", h.Get("Subject"))
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != brand || from[0].Address != mailFrom {
		t.Errorf("From %q, want %s <%s>", h.Get("From"), brand, mailFrom)
	}
	if date, err := h.Date(); err != nil || !date.Equal(t0) {
		t.Errorf("Date %q, want the enqueue time", h.Get("Date"))
	}
	if h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted %q", h.Get("Auto-Submitted"))
	}
	if strings.Join(msg.Multiparts, " ") != "multipart/mixed multipart/alternative" {
		t.Errorf("structure %v, want mixed(alternative(text, html), pdf)", msg.Multiparts)
	}
	text, ok := msg.part("text/plain")
	if !ok || !bytes.Contains(text.Body, []byte("Batch PR-261121-001 is booked in")) || !bytes.Contains(text.Body, []byte(brand+" operations")) {
		t.Errorf("text part: %q", text.Body)
	}
	html, ok := msg.part("text/html")
	if !ok || !bytes.Contains(html.Body, []byte("<strong>PR-261121-001</strong>")) || !bytes.Contains(html.Body, []byte(brand+" operations")) {
		t.Errorf("html part: %q", html.Body)
	}
	pdf, ok := msg.part("application/pdf")
	if !ok || pdf.Filename != "PR-261121-001-label.pdf" || !bytes.Equal(pdf.Body, labelPDF) {
		t.Errorf("PDF attachment %q (%d bytes) is not the label enqueued (%d bytes)", pdf.Filename, len(pdf.Body), len(labelPDF))
	}
}

func TestTheSameIdempotencyKeyEnqueuedTwiceSendsOneEmail(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	first := enqueue(t, s, labelEmail("copacker_label:batch-2"))
	second := enqueue(t, s, labelEmail("copacker_label:batch-2"))
	if first != second {
		t.Fatalf("two rows for one key: %s, %s", first, second)
	}
	sendOK(t, s)
	enqueue(t, s, labelEmail("copacker_label:batch-2")) // after it was sent, too
	s.Clock.Advance(time.Hour)
	sendOK(t, s)
	if n := len(fake.messages()); n != 1 {
		t.Fatalf("%d messages arrived, want 1", n)
	}
}

// An email without attachments is sent like any other (its attachment_meta is NULL).
func TestAnEmailWithoutAttachmentsArrives(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	e := labelEmail("copacker_label:no-attachment")
	e.Attachments = nil
	id := enqueue(t, s, e)
	sendOK(t, s)
	if n := len(fake.messages()); n != 1 {
		t.Fatalf("%d messages arrived, want 1", n)
	}
	if row := loadRow(t, s.App, id); row.State != "sent" {
		t.Fatalf("state %s, want sent", row.State)
	}
}

// A temporary refusal or a timeout at any step before the end of the data leaves the
// email failed; it is tried again once its backoff (30 s to 1 min) has passed and
// arrives once.
func TestTemporaryFailuresAreRetriedAfterTheBackoffAndSentOnce(t *testing.T) {
	cases := []struct {
		name    string
		fault   func(*fakeSMTP)
		errPart string
	}{
		{"451 at MAIL FROM", func(f *fakeSMTP) { f.failNext("mail", 451, "Greylisted, try again later", 1) }, "MAIL FROM: 451"},
		{"450 at RCPT TO", func(f *fakeSMTP) { f.failNext("rcpt", 450, "Mailbox busy", 1) }, "RCPT TO <production@copacker.test>: 450"},
		{"452 at the end of data", func(f *fakeSMTP) { f.failNext("data", 452, "Insufficient system storage", 1) }, "end of data: 452"},
		{"no answer to RCPT TO", func(f *fakeSMTP) { f.hangAt("rcpt") }, "timeout"},
	}
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(fake.messages())
			id := enqueue(t, s, labelEmail("retry:"+c.name))
			c.fault(fake)
			sendOK(t, s)
			row := loadRow(t, s.App, id)
			if row.State != "failed" || row.Attempts != 1 || !strings.Contains(row.LastError, c.errPart) || row.DataStartedAt != "" {
				t.Fatalf("after the first attempt: %+v, want failed with %q", row, c.errPart)
			}
			if n := len(fake.messages()) - before; n != 0 {
				t.Fatalf("%d messages arrived from a refused attempt", n)
			}
			s.Clock.Advance(29 * time.Second)
			sendOK(t, s)
			if row := loadRow(t, s.App, id); row.Attempts != 1 {
				t.Fatalf("tried again before its backoff: %+v", row)
			}
			s.Clock.Advance(31 * time.Second)
			sendOK(t, s)
			row = loadRow(t, s.App, id)
			if row.State != "sent" || row.Attempts != 2 || row.LastError != "" {
				t.Fatalf("after the backoff: %+v, want sent on attempt 2", row)
			}
			if n := len(fake.messages()) - before; n != 1 {
				t.Fatalf("%d messages arrived, want 1", n)
			}
		})
	}
}

// A permanent refusal at MAIL, RCPT or the end of the data sends the email to dead at
// once with the server's words, files email.dead, and nothing arrives, then or later.
func TestAPermanentRefusalIsDeadAtOnceWithTheServersMessage(t *testing.T) {
	cases := []struct {
		step, msg, errPart string
		code               int
	}{
		{"mail", "Sender address rejected: not owned by user", "MAIL FROM: 553", 553},
		{"rcpt", "No such user here", "RCPT TO <production@copacker.test>: 550", 550},
		{"data", "Message rejected as spam", "end of data: 554", 554},
	}
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	for _, c := range cases {
		t.Run(c.step, func(t *testing.T) {
			id := enqueue(t, s, labelEmail("dead:"+c.step))
			fake.failNext(c.step, c.code, c.msg, 1)
			sendOK(t, s)
			row := loadRow(t, s.App, id)
			if row.State != "dead" || row.Attempts != 1 || !strings.Contains(row.LastError, c.errPart) || !strings.Contains(row.LastError, c.msg) {
				t.Fatalf("row: %+v, want dead saying %q and %q", row, c.errPart, c.msg)
			}
			if n := deadEvents(t, s.App, id); n != 1 {
				t.Errorf("%d email.dead events, want 1", n)
			}
			s.Clock.Advance(24 * time.Hour)
			sendOK(t, s)
			if n := len(fake.messages()); n != 0 {
				t.Errorf("%d messages arrived, want none", n)
			}
			if row := loadRow(t, s.App, id); row.Attempts != 1 {
				t.Errorf("a dead email was tried again: %+v", row)
			}
		})
	}
}

func TestAnEmailOutOfAttemptsIsDead(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, map[string]string{"OPSPINE_EMAIL_MAX_ATTEMPTS": "3"})
	id := enqueue(t, s, labelEmail("copacker_label:always-busy"))
	fake.failNext("rcpt", 451, "Try again later", -1)
	for attempt := 1; attempt <= 3; attempt++ {
		sendOK(t, s)
		row := loadRow(t, s.App, id)
		if row.Attempts != attempt {
			t.Fatalf("attempt %d: %+v", attempt, row)
		}
		if attempt < 3 && row.State != "failed" {
			t.Fatalf("attempt %d: %+v, want failed", attempt, row)
		}
		s.Clock.Advance(2 * time.Minute << attempt) // past any backoff so far
	}
	row := loadRow(t, s.App, id)
	if row.State != "dead" || !strings.Contains(row.LastError, "Gave up after 3 attempts") || !strings.Contains(row.LastError, "451") {
		t.Fatalf("after the last attempt: %+v", row)
	}
	if n := deadEvents(t, s.App, id); n != 1 {
		t.Errorf("%d email.dead events, want 1", n)
	}
}

// A process that stopped between the claim and the delivery leaves the row in sending
// without data_started_at: nothing was handed over, so the next process (a run after
// the stuck time) sends it, once.
func TestACrashBetweenClaimAndSendIsSentExactlyOnceAfterRestart(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	id := enqueue(t, s, labelEmail("copacker_label:crash-before-data"))
	if ok, err := outbox.Claim(s.App.DB(), id, s.Clock.Now()); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	// the process dies here; the row stays claimed
	sendOK(t, s)
	if row := loadRow(t, s.App, id); row.State != "sending" || len(fake.messages()) != 0 {
		t.Fatalf("a run took a fresh claim as abandoned: %+v", row)
	}
	s.Clock.Advance(2 * time.Minute) // past the stuck time (a few SMTP timeouts, at least a minute)
	run := sendOK(t, s)
	if !strings.Contains(run.Summary, "1 requeued") {
		t.Errorf("summary %q does not tell of the requeued email", run.Summary)
	}
	s.Clock.Advance(time.Hour)
	sendOK(t, s)
	row := loadRow(t, s.App, id)
	if row.State != "sent" || row.Attempts != 2 {
		t.Fatalf("row %+v, want sent on the second attempt", row)
	}
	if n := len(fake.messages()); n != 1 {
		t.Fatalf("%d messages arrived, want exactly 1", n)
	}
	if fake.messages()[0].MessageID != "<"+row.MessageID+">" {
		t.Errorf("the retried email has another Message-ID")
	}
}

// A process that stopped after DATA began may have delivered the email: the next
// process marks it dead with what a person must check, and never sends it again.
func TestARowLeftInSendingAfterDataStartedIsDeadNotResent(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	id := enqueue(t, s, labelEmail("copacker_label:crash-after-data"))
	if ok, err := outbox.Claim(s.App.DB(), id, s.Clock.Now()); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if _, err := s.App.DB().NewQuery(`UPDATE email_outbox SET data_started_at = {:ts} WHERE id = {:id}`).
		Bind(map[string]any{"ts": s.Clock.Now().UTC().Format("2006-01-02 15:04:05.000Z"), "id": id}).Execute(); err != nil {
		t.Fatal(err)
	}
	s.Clock.Advance(2 * time.Minute)
	run := sendOK(t, s)
	if !strings.Contains(run.Summary, "1 dead (may have been delivered)") {
		t.Errorf("summary %q", run.Summary)
	}
	row := loadRow(t, s.App, id)
	if row.State != "dead" || !strings.Contains(row.LastError, "Check the recipient's mailbox for Message-ID <"+row.MessageID+">") {
		t.Fatalf("row %+v, want dead with a note to check the mailbox", row)
	}
	if n := deadEvents(t, s.App, id); n != 1 {
		t.Errorf("%d email.dead events, want 1", n)
	}
	s.Clock.Advance(time.Hour)
	sendOK(t, s)
	if n := len(fake.messages()); n != 0 {
		t.Fatalf("%d messages sent, want none", n)
	}
}

// The server kept the message but the connection dropped before its answer: the email
// may have arrived (here it did), so it is dead with a note, never sent twice.
func TestAConnectionLostAfterTheEndOfDataIsDeadNotResent(t *testing.T) {
	t.Parallel()
	fake := startFakeSMTP(t)
	s := start(t, fake, nil)
	id := enqueue(t, s, labelEmail("copacker_label:lost-answer"))
	fake.dropAfterData()
	sendOK(t, s)
	row := loadRow(t, s.App, id)
	if row.State != "dead" || !strings.Contains(row.LastError, "may have been delivered") || !strings.Contains(row.LastError, row.MessageID) {
		t.Fatalf("row %+v, want dead with a note to check the mailbox", row)
	}
	s.Clock.Advance(24 * time.Hour)
	sendOK(t, s)
	if n := len(fake.messages()); n != 1 {
		t.Fatalf("the server holds %d copies, want 1", n)
	}
}

func TestWithoutAnSMTPHostEmailsStayPendingAndTheRunSaysSo(t *testing.T) {
	t.Parallel()
	s := start(t, nil, nil)
	id := enqueue(t, s, labelEmail("copacker_label:no-smtp"))
	run := sendOK(t, s)
	if !strings.Contains(run.Summary, "SMTP is not configured") || !strings.Contains(run.Summary, "1 emails wait") {
		t.Errorf("summary %q", run.Summary)
	}
	if row := loadRow(t, s.App, id); row.State != "pending" || row.Attempts != 0 {
		t.Errorf("row %+v, want pending and untouched", row)
	}
}

// An unreachable server costs the email in hand one attempt; the others wait for the
// next run untouched, and the run reports the error.
func TestAnUnreachableServerFailsTheRunAndSpendsOneAttempt(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	s := start(t, nil, map[string]string{"OPSPINE_SMTP_HOST": "127.0.0.1", "OPSPINE_SMTP_PORT": itoa(port),
		"OPSPINE_SMTP_TLS": "none", "OPSPINE_MAIL_FROM": mailFrom})
	enqueue(t, s, labelEmail("copacker_label:a"))
	enqueue(t, s, labelEmail("copacker_label:b"))
	run := send(t, s)
	if run.Outcome != "error" || !strings.Contains(run.Error, "connect to 127.0.0.1") {
		t.Fatalf("run %s: %s (%s)", run.Outcome, run.Error, run.Summary)
	}
	if n := testkit.Count(t, s.App, "email_outbox", "state = 'failed' AND attempts = 1", nil); n != 1 {
		t.Errorf("%d emails failed, want 1", n)
	}
	if n := testkit.Count(t, s.App, "email_outbox", "state = 'pending' AND attempts = 0", nil); n != 1 {
		t.Errorf("%d emails untouched, want 1", n)
	}
}
