package benchmark

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opspine/opspine/app/monitor"
)

// outboxEmail is an email_outbox row as the records API shows it.
type outboxEmail struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	MessageID     string `json:"message_id"`
	Attempts      int    `json:"attempts"`
	ClaimedAt     string `json:"claimed_at"`
	DataStartedAt string `json:"data_started_at"`
	LastError     string `json:"last_error"`
	SentAt        string `json:"sent_at"`
}

func (c *child) email(t *testing.T, ctx context.Context, id string) outboxEmail {
	t.Helper()
	var e outboxEmail
	c.mustCall(t, ctx, http.MethodGet, "/api/collections/email_outbox/records/"+id, nil, http.StatusOK, &e)
	return e
}

// waitStall waits for the SMTP server to hold a session, and returns what it holds.
func waitStall(t *testing.T, ctx context.Context, c *child, s *stallServer, what string) string {
	t.Helper()
	select {
	case got := <-s.stalled:
		return got
	case <-c.exited:
		t.Fatalf("%s: opspine exited (%v):\n%s", what, c.waitErr, c.logTail())
	case <-ctx.Done():
		t.Fatalf("%s: %v", what, ctx.Err())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: the SMTP server saw no session stall within 20s:\n%s", what, c.logTail())
	}
	return ""
}

// SIGKILL while an email is being sent, at the two moments that differ (issue 7):
//
//   - inside DATA (instance 1): the whole message, final "." included, has reached the
//     server and its answer has not. The server may have it, so the email must never be
//     sent again by itself: after restarts it ends dead, saying so, with its Message-ID
//     to look for, visible through the API and as an email.dead ops event.
//   - before DATA (instance 2, at RCPT TO): nothing was handed over, so the email is
//     sent after the restart, exactly once.
//
// A third email sent before the first kill shows the ordinary path. Across the three
// instances the SMTP server accepts each Message-ID at most once.
//
// The outbox settles rows a stopped process left in sending only once they are older
// than its StuckAfter (a minute with the 10 s SMTP timeout here), so the test waits
// that minute of real time in the third instance (in parallel with the other tests
// that wait).
func TestCrashSigkillDuringEmailSendNeverSendsTwice(t *testing.T) {
	t.Parallel() // most of it is the minute's wait, which the other parallel tests share
	ctx, exe, dir, secret := realBinary(t, 3*time.Minute)
	smtpd := startStallServer(t)
	env := []string{
		"OPSPINE_SMTP_HOST=127.0.0.1", fmt.Sprintf("OPSPINE_SMTP_PORT=%d", smtpd.port), "OPSPINE_SMTP_TLS=none",
		"OPSPINE_MAIL_FROM=ops@opspine.test", "OPSPINE_SMTP_TIMEOUT=10s",
		"OPSPINE_COPACKER_EMAIL=production@copacker.test",
		// only the run at start and the runs the test asks for: a scheduled run at a
		// minute boundary would race the test for the emails
		"OPSPINE_EMAIL_SEND_SCHEDULE=0 3 1 1 *",
	}
	const job = "email-outbox-send"

	// Instance 1: three batches, three co-packer emails. The first is accepted, the
	// second stalls inside DATA and the process is killed there.
	c1, err := startChild(ctx, exe, dir, secret, env...)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.kill()
	if err := c1.jobRanIdle(ctx, job, 20*time.Second); err != nil { // the run at start
		t.Fatal(err)
	}
	c1.createProduct(t, ctx, "E2E-BEEF-500", 60)
	var ids [3]string
	for i := range ids {
		b := c1.createBatch(t, ctx, "E2E-BEEF-500", 100+i, time.Time{})
		if b.CopackerEmail == nil || b.CopackerEmail.ID == "" {
			t.Fatalf("batch %s enqueued no co-packer email", b.Code)
		}
		ids[i] = b.CopackerEmail.ID
	}
	var msgID [3]string
	for i, id := range ids {
		e := c1.email(t, ctx, id)
		if e.State != "pending" || e.MessageID == "" {
			t.Fatalf("email %d before sending: %+v", i, e)
		}
		msgID[i] = "<" + strings.Trim(e.MessageID, "<>") + ">"
	}
	smtpd.stallNext(stallInData, 1)
	go c1.runJob(ctx, job, time.Minute) // answers only once the process is gone
	if got := waitStall(t, ctx, c1, smtpd, "instance 1"); got != msgID[1] {
		t.Fatalf("stalled inside DATA of %q, want the second email %q", got, msgID[1])
	}
	if e := c1.email(t, ctx, ids[0]); e.State != "sent" {
		t.Fatalf("first email before the kill: %+v, want sent", e)
	}
	if e := c1.email(t, ctx, ids[1]); e.State != "sending" || e.DataStartedAt == "" {
		t.Fatalf("second email while its DATA stalls: %+v, want sending with data_started_at", e)
	}
	c1.kill()

	// Instance 2: its run at start finds the second email in sending, too recent to be
	// settled, and takes the third, which stalls at RCPT TO; killed there.
	smtpd.stallNext(stallAtRcpt, 0)
	c2, err := startChild(ctx, exe, dir, secret, env...)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.kill()
	if got := waitStall(t, ctx, c2, smtpd, "instance 2"); got != "" {
		t.Fatalf("instance 2 stalled in DATA of %s, want at RCPT TO", got)
	}
	third := c2.email(t, ctx, ids[2])
	if third.State != "sending" || third.DataStartedAt != "" {
		t.Fatalf("third email while RCPT TO stalls: %+v, want sending without data_started_at", third)
	}
	if e := c2.email(t, ctx, ids[1]); e.State != "sending" {
		t.Fatalf("second email in instance 2: %+v, want still sending (not settled before StuckAfter)", e)
	}
	c2.kill()

	// Instance 3: once the claims are older than StuckAfter, a run settles both: the
	// third is sent again, the second is dead.
	c3, err := startChild(ctx, exe, dir, secret, env...)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.stop()
	claimed, err := time.Parse(pbDate, third.ClaimedAt)
	if err != nil {
		t.Fatalf("claimed_at %q: %v", third.ClaimedAt, err)
	}
	settleAfter := claimed.Add(time.Minute + time.Second) // StuckAfter: max(4 × 10 s, 1 min)
	waited := time.Until(settleAfter)
	t.Logf("waiting %s until the emails left in sending are older than the outbox's StuckAfter", waited.Round(time.Second))
	if err := pause(ctx, c3, waited); err != nil {
		t.Fatal(err)
	}
	c3.mustRunJob(t, ctx, job)
	var sent, dead outboxEmail
	err = waitUntil(ctx, c3, 20*time.Second, "the emails left in sending settled", func() (bool, error) {
		sent, dead = c3.email(t, ctx, ids[2]), c3.email(t, ctx, ids[1])
		return sent.State == "sent" && dead.State == "dead", nil
	})
	if err != nil {
		t.Fatalf("%v: third %+v, second %+v", err, sent, dead)
	}
	// Another run sends nothing again.
	c3.mustRunJob(t, ctx, job)

	accepted, dataRead, order := smtpd.counts()
	for id, n := range accepted {
		if n > 1 {
			t.Errorf("Message-ID %s accepted %d times", id, n)
		}
	}
	if accepted[msgID[0]] != 1 || accepted[msgID[2]] != 1 || len(accepted) != 2 {
		t.Errorf("accepted %v, want the first and third email once each", accepted)
	}
	if accepted[msgID[1]] != 0 || dataRead[msgID[1]] != 1 {
		t.Errorf("the email killed inside DATA: data read %d times, accepted %d; want read once (by instance 1) and never again",
			dataRead[msgID[1]], accepted[msgID[1]])
	}
	if e := c3.email(t, ctx, ids[0]); e.State != "sent" || e.Attempts != 1 {
		t.Errorf("first email: %+v, want sent at its first attempt", e)
	}
	dead = c3.email(t, ctx, ids[1])
	if dead.State != "dead" || !strings.Contains(dead.LastError, "may have been delivered") ||
		!strings.Contains(dead.LastError, strings.Trim(msgID[1], "<>")) || !strings.Contains(dead.LastError, "never sends it again by itself") {
		t.Errorf("the email killed inside DATA: %+v, want dead saying it may have been delivered, with its Message-ID", dead)
	}
	sent = c3.email(t, ctx, ids[2])
	if sent.State != "sent" || sent.DataStartedAt == "" || sent.Attempts != 2 {
		t.Errorf("the email killed at RCPT TO: %+v, want sent at its second attempt", sent)
	}
	var events []struct {
		Kind     string `json:"kind"`
		EntityID string `json:"entity_id"`
	}
	c3.mustList(t, ctx, "ops_events", "kind='email.dead'", &events)
	if len(events) != 1 || events[0].EntityID != ids[1] {
		t.Errorf("email.dead ops events %+v, want one, for the email killed inside DATA", events)
	}
	// Across every run of every instance the outbox reports the two left in sending
	// once each: one requeued, one abandoned.
	var runs []jobRun
	c3.mustList(t, ctx, "monitoring_runs", "name='"+job+"'", &runs)
	// The two runs killed mid-send were closed as errors by the next start, not left
	// running for ever.
	requeued, abandoned, killed := 0, 0, 0
	for _, r := range runs {
		requeued += r.figure("requeued")
		abandoned += r.figure("abandoned")
		switch {
		case r.Outcome == "running":
			t.Errorf("run %s of %s is still running after the restarts", r.ID, job)
		case r.Outcome == "error" && r.Summary == monitor.AbandonedSummary:
			killed++
		}
	}
	if requeued != 1 || abandoned != 1 || killed != 2 {
		t.Errorf("over %d runs: %d requeued, %d abandoned, %d closed as killed; want 1, 1 and 2", len(runs), requeued, abandoned, killed)
	}
	t.Logf("%d emails: accepted in order %v; the one killed inside DATA read once and dead; the one killed at RCPT TO sent after the restart; %d runs of %s (%d killed, closed at the next start), %d requeued, %d abandoned",
		len(ids), order, len(runs), job, killed, requeued, abandoned)
}
