package labmail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/labmail"
	"github.com/opspine/opspine/app/testkit"
)

const labFrom = "Reports <reports@foodlab.example>"

func poller(app core.App, srv *imapServer, processed string) *labmail.Poller {
	return &labmail.Poller{App: app, Now: func() time.Time { return t0 },
		IMAP: labmail.IMAP{Addr: srv.Addr, Username: imapUser, Password: imapPass, TLS: false, Mailbox: "INBOX", ProcessedMailbox: processed}}
}

func passRows(code string) [][]string {
	return [][]string{{"Sample", code}, {"Salmonella spp.", "Not Detected in 25g"}, {"Listeria monocytogenes", "Not Detected in 25g"}, {"Enterobacteriaceae", "<10 cfu/g"}}
}

func emailByMessageID(t *testing.T, app core.App, id string) *core.Record {
	t.Helper()
	rec, err := app.FindFirstRecordByData(labmail.CollectionEmails, "message_id", id)
	if err != nil {
		t.Fatalf("lab email %s: %v", id, err)
	}
	return rec
}

func mustPoll(t *testing.T, p *labmail.Poller) labmail.PollReport {
	t.Helper()
	rep, err := p.Poll(context.Background())
	if err != nil {
		t.Fatalf("poll: %v (%s)", err, rep.Summary())
	}
	return rep
}

// TestPollReleasesFailsAndQuarantines delivers one mailbox of typical lab emails to the
// real IMAP server and checks what staff would see after one poll: passing reports
// release their batch with the PDF attached, a failing one fails its batch with a
// critical alert, unreadable or doubtful ones wait in quarantine with a reason and a
// warning alert, and every handled message is marked seen. A second poll does nothing.
func TestPollReleasesFailsAndQuarantines(t *testing.T) {
	app := testkit.NewApp(t)
	srv := startIMAP(t)
	pass := makeBatch(t, app, "B-261117-001")
	fail := makeBatch(t, app, "B-261117-002")
	latin := makeBatch(t, app, "B-261117-003")
	low := makeBatch(t, app, "B-261117-004")
	released := makeBatch(t, app, "B-261117-005")
	if rec, _ := app.FindRecordById("batches", released); rec != nil {
		rec.Set("status", "released")
		if err := app.Save(rec); err != nil {
			t.Fatal(err)
		}
	}
	csv := part{Name: "results.csv", ContentType: "text/csv", Data: []byte("test,result\nsalmonella,absent\n")}
	type msg struct {
		name  string
		raw   []byte
		id    string
		state string
		// reason is a part of the quarantine reason staff see
		reason string
	}
	var msgs []msg
	add := func(name, state, reason string, body, charset string, parts ...part) {
		raw, id := mimeMessage(labFrom, "Certificate of analysis "+name, body, charset, parts...)
		msgs = append(msgs, msg{name, raw, id, state, reason})
	}
	passPDF := reportPDF(t, "Certificate of Analysis", passRows("B-261117-001"))
	add("pass", labmail.StateProcessed, "", "Please find attached.", "utf-8", pdfPart("coa-001.pdf", passPDF))
	add("fail", labmail.StateProcessed, "", "Attached.", "utf-8", pdfPart("coa-002.pdf", reportPDF(t, "Test report", [][]string{
		{"Batch B-261117-002"}, {"Salmonella spp.", "Detected in 25g"}, {"Listeria", "Absent"}, {"Enterobacteriaceae", "1.2E+02 cfu/g"}})))
	add("latin1", labmail.StateProcessed, "", "R=E9sultats d'analyse ci-joints, cordialement, Fran=E7oise", "iso-8859-1",
		pdfPart("rapport.pdf", reportPDF(t, "Rapport", passRows("B-261117-003"))))
	add("scan", labmail.StateQuarantined, "no text layer (scanned?)", "Scan attached", "utf-8", pdfPart("scan.pdf", scannedPDF(t)))
	add("corrupt", labmail.StateQuarantined, "could not read the PDF", "x", "utf-8", pdfPart("broken.pdf", corruptPDF()))
	add("csv only", labmail.StateIgnored, "no PDF attachment", "CSV attached", "utf-8", csv)
	add("unknown batch", labmail.StateQuarantined, "batch B-261117-777 is not known", "x", "utf-8", pdfPart("coa-777.pdf", reportPDF(t, "CoA", passRows("B-261117-777"))))
	add("not on hold", labmail.StateQuarantined, "batch B-261117-005 is released, not on qa_hold", "x", "utf-8", pdfPart("coa-005.pdf", reportPDF(t, "CoA", passRows("B-261117-005"))))
	add("low confidence", labmail.StateQuarantined, "parse confidence 0.67 is below 0.80", "x", "utf-8", pdfPart("coa-004.pdf", reportPDF(t, "CoA", [][]string{
		{"B-261117-004"}, {"Salmonella", "Absent"}, {"Enterobacteriaceae", "<10 cfu/g"}})))
	for _, m := range msgs {
		srv.deliver(t, "INBOX", m.raw)
	}

	rep := mustPoll(t, poller(app, srv, ""))
	if rep.Fetched != len(msgs) || rep.Stored != len(msgs) || rep.Processed != 3 || rep.Quarantined != 5 || rep.Ignored != 1 {
		t.Errorf("poll report: %s", rep.Summary())
	}
	for _, m := range msgs {
		rec := emailByMessageID(t, app, m.id)
		if rec.GetString("state") != m.state || !strings.Contains(rec.GetString("reason"), m.reason) {
			t.Errorf("%s: state %q reason %q, want %s with %q", m.name, rec.GetString("state"), rec.GetString("reason"), m.state, m.reason)
		}
		if m.state == labmail.StateQuarantined && testkit.Count(t, app, "alerts", "dedupe_key = {:k} AND severity = 'warning' AND state = 'open'",
			map[string]any{"k": "lab-email-quarantined:" + rec.Id}) != 1 {
			t.Errorf("%s: no open warning alert for the quarantined email", m.name)
		}
	}
	for id, want := range map[string]string{pass: "released", fail: "failed", latin: "released", low: "qa_hold", released: "released"} {
		if got := batchStatus(t, app, id); got != want {
			t.Errorf("batch %s is %s, want %s", id, got, want)
		}
	}
	lr, err := app.FindFirstRecordByData("lab_results", "batch", pass)
	if err != nil {
		t.Fatal(err)
	}
	if lr.GetString("source") != "email" || lr.GetFloat("confidence") != 1 || lr.GetString("report_pdf") == "" || lr.GetString("pdf_sha256") == "" {
		t.Errorf("lab result from email: source %q confidence %v pdf %q sha %q", lr.GetString("source"), lr.GetFloat("confidence"), lr.GetString("report_pdf"), lr.GetString("pdf_sha256"))
	}
	if got := emailByMessageID(t, app, msgs[0].id); got.GetString("lab_result") != lr.Id || got.GetString("batch") != pass || !strings.Contains(got.GetString("extracted_text"), "Not Detected in 25g") {
		t.Errorf("processed email links lab_result %q batch %q; text %q", got.GetString("lab_result"), got.GetString("batch"), got.GetString("extracted_text"))
	}
	if testkit.Count(t, app, "alerts", "severity = 'critical' AND dedupe_key = {:k}", map[string]any{"k": "batch-lab-failed:" + fail}) != 1 {
		t.Error("no critical alert for the failed batch")
	}
	if body := emailByMessageID(t, app, msgs[2].id).GetString("body_text"); !strings.Contains(body, "Résultats") || !strings.Contains(body, "Françoise") {
		t.Errorf("ISO-8859-1 body read as %q", body)
	}
	if n, unseen := srv.status(t, "INBOX"); n != uint32(len(msgs)) || unseen != 0 {
		t.Errorf("mailbox: %d messages, %d unseen; want all %d seen", n, unseen, len(msgs))
	}

	again := mustPoll(t, poller(app, srv, ""))
	if again.Fetched != 0 || testkit.Count(t, app, "lab_results", "", nil) != 3 {
		t.Errorf("second poll: %s; lab results %d", again.Summary(), testkit.Count(t, app, "lab_results", "", nil))
	}

	// the lab sends the same report again under a new Message-ID: a no-op
	resend, _ := mimeMessage(labFrom, "Resend", "again", "utf-8", pdfPart("coa-001-again.pdf", passPDF))
	srv.deliver(t, "INBOX", resend)
	dup := mustPoll(t, poller(app, srv, ""))
	if dup.Fetched != 1 || dup.Duplicates != 1 || testkit.Count(t, app, "lab_emails", "", nil) != len(msgs) || testkit.Count(t, app, "lab_results", "", nil) != 3 {
		t.Errorf("resent PDF: %s; lab emails %d", dup.Summary(), testkit.Count(t, app, "lab_emails", "", nil))
	}
}

// TestPollAfterACrashRedoesNothingAndPicksUpTheRest: a process that stopped after
// handling a message but before marking it seen, and one that stopped after storing a
// message but before processing it, leave work the next poll finishes without recording
// anything twice.
func TestPollAfterACrashRedoesNothingAndPicksUpTheRest(t *testing.T) {
	app := testkit.NewApp(t)
	srv := startIMAP(t)
	a := makeBatch(t, app, "B-261118-001")
	b := makeBatch(t, app, "B-261118-002")
	c := makeBatch(t, app, "B-261118-003")
	rawA, idA := mimeMessage(labFrom, "A", "a", "utf-8", pdfPart("a.pdf", reportPDF(t, "CoA", passRows("B-261118-001"))))
	rawB, idB := mimeMessage(labFrom, "B", "b", "utf-8", pdfPart("b.pdf", reportPDF(t, "CoA", passRows("B-261118-002"))))
	rawC, idC := mimeMessage(labFrom, "C", "c", "utf-8", pdfPart("c.pdf", reportPDF(t, "CoA", passRows("B-261118-003"))))
	for _, raw := range [][]byte{rawA, rawB, rawC} {
		srv.deliver(t, "INBOX", raw)
	}
	// message A was fully handled, then the process died before marking it seen
	msgA, err := labmail.ParseMessage(rawA)
	if err != nil {
		t.Fatal(err)
	}
	st, err := labmail.StoreEmail(app, msgA, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := labmail.ProcessEmail(app, st.ID, labmail.Options{Now: t0}); err != nil {
		t.Fatal(err)
	}
	// message B was stored, then the process died before processing it
	msgB, _ := labmail.ParseMessage(rawB)
	if _, err := labmail.StoreEmail(app, msgB, t0); err != nil {
		t.Fatal(err)
	}

	rep := mustPoll(t, poller(app, srv, ""))
	if rep.Fetched != 3 || rep.Stored != 1 || rep.Duplicates != 2 {
		t.Errorf("poll after crash: %s", rep.Summary())
	}
	for _, id := range []string{a, b, c} {
		if n := testkit.Count(t, app, "lab_results", "batch = {:b}", map[string]any{"b": id}); n != 1 || batchStatus(t, app, id) != "released" {
			t.Errorf("batch %s: %d lab results, status %s; want 1, released", id, n, batchStatus(t, app, id))
		}
	}
	for _, id := range []string{idA, idB, idC} {
		if s := emailByMessageID(t, app, id).GetString("state"); s != labmail.StateProcessed {
			t.Errorf("email %s is %s", id, s)
		}
	}
	if _, unseen := srv.status(t, "INBOX"); unseen != 0 {
		t.Errorf("%d messages still unseen", unseen)
	}
}

// TestPollStartsOverWhenUIDValidityChanges: the mailbox is recreated (new UIDVALIDITY,
// UIDs start again at 1); the poll reads it from the start, recognises what it stored
// before and handles only the new message.
func TestPollStartsOverWhenUIDValidityChanges(t *testing.T) {
	app := testkit.NewApp(t)
	srv := startIMAP(t)
	makeBatch(t, app, "B-261119-001")
	second := makeBatch(t, app, "B-261119-002")
	raw1, _ := mimeMessage(labFrom, "1", "1", "utf-8", pdfPart("1.pdf", reportPDF(t, "CoA", passRows("B-261119-001"))))
	filler, _ := mimeMessage(labFrom, "no pdf", "hello", "utf-8")
	srv.deliver(t, "INBOX", filler)
	srv.deliver(t, "INBOX", raw1)
	first := mustPoll(t, poller(app, srv, ""))
	if first.Stored != 2 {
		t.Fatalf("first poll: %s", first.Summary())
	}

	c := srv.client(t)
	if err := c.Delete("INBOX").Wait(); err != nil {
		t.Fatalf("delete INBOX: %v", err)
	}
	if err := c.Create("INBOX", nil).Wait(); err != nil {
		t.Fatalf("create INBOX: %v", err)
	}
	c.Close()
	raw2, id2 := mimeMessage(labFrom, "2", "2", "utf-8", pdfPart("2.pdf", reportPDF(t, "CoA", passRows("B-261119-002"))))
	srv.deliver(t, "INBOX", raw1) // UID 1 again, with the old message
	srv.deliver(t, "INBOX", raw2) // UID 2: below the last UID remembered, but new

	rep := mustPoll(t, poller(app, srv, ""))
	if !rep.UIDValidityReset || rep.Fetched != 2 || rep.Duplicates != 1 || rep.Processed != 1 {
		t.Errorf("after UIDVALIDITY change: %s", rep.Summary())
	}
	if emailByMessageID(t, app, id2).GetString("state") != labmail.StateProcessed || batchStatus(t, app, second) != "released" {
		t.Error("the new message was not processed")
	}
	if testkit.Count(t, app, "lab_results", "", nil) != 2 {
		t.Errorf("%d lab results, want 2", testkit.Count(t, app, "lab_results", "", nil))
	}
}

// TestPollMovesHandledMessagesToTheProcessedMailbox: with a processed mailbox set,
// handled messages leave the inbox.
func TestPollMovesHandledMessagesToTheProcessedMailbox(t *testing.T) {
	app := testkit.NewApp(t)
	srv := startIMAP(t)
	if err := srv.user.Create("Processed", nil); err != nil {
		t.Fatal(err)
	}
	makeBatch(t, app, "B-261120-001")
	raw, _ := mimeMessage(labFrom, "1", "1", "utf-8", pdfPart("1.pdf", reportPDF(t, "CoA", passRows("B-261120-001"))))
	srv.deliver(t, "INBOX", raw)
	mustPoll(t, poller(app, srv, "Processed"))
	if n, _ := srv.status(t, "INBOX"); n != 0 {
		t.Errorf("%d messages left in INBOX", n)
	}
	if n, _ := srv.status(t, "Processed"); n != 1 {
		t.Errorf("%d messages in Processed, want 1", n)
	}
}

// TestPollRecordsAFailedConnection: a wrong password is an error of the run and the
// mailbox state keeps it, with no successful poll time.
func TestPollRecordsAFailedConnection(t *testing.T) {
	app := testkit.NewApp(t)
	srv := startIMAP(t)
	p := poller(app, srv, "")
	p.IMAP.Password = "wrong"
	if _, err := p.Poll(context.Background()); err == nil {
		t.Fatal("poll with a wrong password succeeded")
	}
	if testkit.Count(t, app, labmail.CollectionMailbox, "last_error != '' AND last_success_at = ''", nil) != 1 {
		t.Error("the failed poll is not recorded in lab_mailbox_state")
	}
}

// TestPollKeepsAFailingMessageForTheNextPollAndGoesOn: a stored message that cannot be
// processed now (its stored PDF is gone) is marked failed with the reason and left
// unread, the poll's place stays before it, and the message after it is still handled.
func TestPollKeepsAFailingMessageForTheNextPollAndGoesOn(t *testing.T) {
	app := testkit.NewApp(t)
	srv := startIMAP(t)
	makeBatch(t, app, "B-261121-001")
	second := makeBatch(t, app, "B-261121-002")
	rawA, idA := mimeMessage(labFrom, "A", "a", "utf-8", pdfPart("a.pdf", reportPDF(t, "CoA", passRows("B-261121-001"))))
	rawB, _ := mimeMessage(labFrom, "B", "b", "utf-8", pdfPart("b.pdf", reportPDF(t, "CoA", passRows("B-261121-002"))))
	srv.deliver(t, "INBOX", rawA)
	srv.deliver(t, "INBOX", rawB)
	msgA, _ := labmail.ParseMessage(rawA)
	st, err := labmail.StoreEmail(app, msgA, t0)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := app.FindRecordById(labmail.CollectionEmails, st.ID)
	fsys, err := app.NewFilesystem()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range rec.GetStringSlice("attachments") {
		if err := fsys.Delete(rec.BaseFilesPath() + "/" + name); err != nil {
			t.Fatal(err)
		}
	}
	fsys.Close()

	rep, err := poller(app, srv, "").Poll(context.Background())
	if err == nil || rep.Failed != 1 || rep.Processed != 1 {
		t.Fatalf("poll: %v (%s)", err, rep.Summary())
	}
	if a := emailByMessageID(t, app, idA); a.GetString("state") != labmail.StateFailed || !strings.Contains(a.GetString("reason"), "will retry") {
		t.Errorf("failing email: %s %q", a.GetString("state"), a.GetString("reason"))
	}
	if batchStatus(t, app, second) != "released" {
		t.Error("the message after the failing one was not handled")
	}
	if _, unseen := srv.status(t, "INBOX"); unseen != 1 {
		t.Errorf("%d unseen, want the failing one", unseen)
	}
	if testkit.Count(t, app, labmail.CollectionMailbox, "last_uid = 0 AND last_error LIKE '%process email%'", nil) != 1 {
		t.Error("the poll's place moved past the failing message, or its error is not kept")
	}
}
