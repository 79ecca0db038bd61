package outbox

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/retry"
	"github.com/opspine/opspine/app/sqlstore"
)

// sendBatch bounds one run; the next run takes the rest.
const sendBatch = 500

// Sender delivers due emails from email_outbox over SMTP, one claimed row at a time.
type Sender struct {
	App  core.App
	SMTP config.SMTP
	// Brand is the From display name when OPSPINE_MAIL_FROM has none.
	Brand string
	// MaxAttempts is how many attempts an email the server turns away for now gets.
	MaxAttempts int
	Backoff     retry.Backoff
	// Now is the clock of every stored time; nil is time.Now.
	Now func() time.Time

	// rootCAs replaces the system roots for the server's certificate (tests only).
	rootCAs *x509.CertPool
}

// Report is what one run of the sender did.
type Report struct {
	SMTPConfigured bool
	Due            int // emails found due at the start
	Sent           int
	Failed         int // turned away for now: retried after a backoff
	Dead           int // refused for good, out of attempts, or of unknown fate
	Requeued       int // left in sending by a stopped run before DATA: pending again
	Abandoned      int // left in sending by a stopped run after DATA started: dead
	Waiting        int // pending or failed emails left when SMTP is not configured
	Deferred       int // due emails left for the next run: this one ran out of time
}

// Summary is the run's one line in monitoring_runs.
func (r Report) Summary() string {
	recovered := ""
	if r.Requeued+r.Abandoned > 0 {
		recovered = fmt.Sprintf("; from a stopped run: %d requeued, %d dead (may have been delivered)", r.Requeued, r.Abandoned)
	}
	if !r.SMTPConfigured {
		return fmt.Sprintf("SMTP is not configured (OPSPINE_SMTP_HOST is empty): %d emails wait in the outbox, none sent%s", r.Waiting, recovered)
	}
	deferred := ""
	if r.Deferred > 0 {
		deferred = fmt.Sprintf("; %d left for the next run", r.Deferred)
	}
	return fmt.Sprintf("%d due: %d sent, %d failed (retried later), %d dead%s%s", r.Due, r.Sent, r.Failed, r.Dead, deferred, recovered)
}

// Figures are the run's numbers in monitoring_runs.
func (r Report) Figures() map[string]any {
	return map[string]any{"smtp_configured": r.SMTPConfigured, "due": r.Due, "sent": r.Sent, "failed": r.Failed,
		"dead": r.Dead, "requeued": r.Requeued, "abandoned": r.Abandoned, "waiting": r.Waiting, "deferred": r.Deferred}
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// StuckAfter is how long a row may stay in sending before a run takes it as left by a
// stopped process: a few SMTP timeouts, at least a minute.
func (s *Sender) StuckAfter() time.Duration {
	return max(4*s.SMTP.Timeout, time.Minute)
}

// SendDue recovers rows a stopped run left in sending, then sends every due email
// (pending, or failed whose next attempt time has come), oldest first, until none is
// left or ctx is nearly over. The error is for the run (the server is unreachable,
// the database failed); what happened to each email is in its row.
func (s *Sender) SendDue(ctx context.Context) (Report, error) {
	rep := Report{SMTPConfigured: s.SMTP.Host != ""}
	if err := s.recoverStuck(&rep); err != nil {
		return rep, err
	}
	if !rep.SMTPConfigured {
		err := s.App.DB().NewQuery(`SELECT COUNT(*) FROM email_outbox WHERE state IN ('pending','failed')`).Row(&rep.Waiting)
		return rep, err
	}
	ids, err := dueEmails(s.App.DB(), s.now(), sendBatch)
	if err != nil {
		return rep, err
	}
	rep.Due = len(ids)
	from, err := s.from()
	if err != nil {
		return rep, err
	}
	var sess *session
	defer func() {
		if sess != nil {
			sess.quit()
		}
	}()
	for i, id := range ids {
		if !s.timeLeft(ctx) {
			rep.Deferred = len(ids) - i
			break
		}
		if sess != nil && !sess.usable() {
			sess.quit()
			sess = nil
		}
		var runErr error
		sess, runErr = s.sendOne(ctx, sess, id, from, &rep)
		if runErr != nil {
			return rep, runErr
		}
	}
	return rep, ctx.Err()
}

// timeLeft says whether another email fits in the run: an email cut off by the run's
// deadline before its end of data costs it an attempt, so one starts only with an
// SMTP timeout (at most 10 s) to spare.
func (s *Sender) timeLeft(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > min(s.SMTP.Timeout, 10*time.Second)
}

func (s *Sender) from() (*netmail.Address, error) {
	a, err := netmail.ParseAddress(s.SMTP.From)
	if err != nil {
		return nil, fmt.Errorf("outbox: OPSPINE_MAIL_FROM=%q is not an email address: %w", s.SMTP.From, err)
	}
	if a.Name == "" {
		a.Name = s.Brand
	}
	return a, nil
}

// sendOne claims one email and delivers it over sess (dialling when sess is nil). It
// returns the session for the next email (nil when this one broke it) and an error
// only when the run must stop: the database failed, or the server is unreachable.
func (s *Sender) sendOne(ctx context.Context, sess *session, id string, from *netmail.Address, rep *Report) (*session, error) {
	claimedAt := s.now()
	ok, err := claim(s.App.DB(), id, claimedAt)
	if err != nil || !ok {
		return sess, err // not due any more (replayed, or taken): nothing to do
	}
	row, err := loadEmail(s.App.DB(), id)
	if err != nil {
		return sess, err
	}
	message, err := composeMessage(s.App, row, from)
	if err != nil {
		rep.Dead++
		return sess, s.markDead(row, fmt.Sprintf("The message could not be built, so it was not sent: %v", err))
	}
	to, cc, _ := row.recipients() // parsed by composeMessage already
	rcpts := make([]string, 0, len(to)+len(cc))
	for _, a := range append(to, cc...) {
		rcpts = append(rcpts, a.Address)
	}
	if sess == nil {
		if sess, err = dialSMTP(ctx, s.SMTP, s.rootCAs); err != nil {
			// the server is unreachable or refuses us: this email waits its backoff, the
			// others wait for the next run without spending an attempt
			return nil, errors.Join(s.fail(row, err, rep), fmt.Errorf("outbox: %w", err))
		}
	}
	resp, err := sess.deliver(from.Address, rcpts, message, func() error {
		return sqlstore.Update(s.App.DB(), collection, id, s.now(), dbx.Params{"data_started_at": sqlstore.FormatTime(s.now())})
	})
	if err == nil {
		rep.Sent++
		return sess, s.markSent(row, resp)
	}
	var de *deliveryError
	if !errors.As(err, &de) {
		de = &deliveryError{fate: retryLater, step: "delivery", err: err, broken: true}
	}
	if de.broken {
		sess.close()
		sess = nil
	}
	switch de.fate {
	case rejected:
		rep.Dead++
		return sess, s.markDead(row, fmt.Sprintf("The SMTP server refused the email for good at %s", de.Error()))
	case unknownFate:
		rep.Dead++
		return sess, s.markDead(row, fmt.Sprintf("The whole message was handed to the SMTP server but no answer came (%s), so it may have been delivered. "+
			"Check the recipient's mailbox for Message-ID <%s> before you replay it: opspine never sends it again by itself.", de.Error(), row.MessageID))
	}
	return sess, s.fail(row, de, rep)
}

// claim takes one due email for an attempt: sending, with its claim time and one more
// attempt. It commits on its own, before any network call, and reports false when the
// row was not due any more.
func claim(db dbx.Builder, id string, now time.Time) (bool, error) {
	ts := sqlstore.FormatTime(now)
	res, err := db.NewQuery(`UPDATE email_outbox SET state = 'sending', claimed_at = {:now}, data_started_at = '',
		attempts = attempts + 1, updated = {:now}
		WHERE id = {:id} AND state IN ('pending','failed') AND next_attempt_at <= {:now}`).
		Bind(dbx.Params{"id": id, "now": ts}).Execute()
	if err != nil {
		return false, fmt.Errorf("outbox: claim email %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func dueEmails(db dbx.Builder, now time.Time, limit int) ([]string, error) {
	var ids []string
	err := db.NewQuery(`SELECT id FROM email_outbox WHERE state IN ('pending','failed') AND next_attempt_at <= {:now}
		ORDER BY next_attempt_at LIMIT {:limit}`).
		Bind(dbx.Params{"now": sqlstore.FormatTime(now), "limit": limit}).Column(&ids)
	if err != nil {
		return nil, fmt.Errorf("outbox: list due emails: %w", err)
	}
	return ids, nil
}

func loadEmail(db dbx.Builder, id string) (emailRow, error) {
	var row emailRow
	err := db.NewQuery(`SELECT id, "to", cc, subject, text_body, html_body, attachments, COALESCE(attachment_meta, 'null') AS attachment_meta, idempotency_key,
		state, attempts, message_id, created FROM email_outbox WHERE id = {:id}`).Bind(dbx.Params{"id": id}).One(&row)
	if err != nil {
		return row, fmt.Errorf("outbox: load email %s: %w", id, err)
	}
	return row, nil
}

func (s *Sender) markSent(row emailRow, resp string) error {
	now := s.now()
	return sqlstore.Update(s.App.DB(), collection, row.ID, now, dbx.Params{
		"state": StateSent, "sent_at": sqlstore.FormatTime(now), "provider_message_id": truncate(resp, 500), "last_error": "",
	})
}

// fail records an attempt the server turned away for now: failed with a backoff, or
// dead after the last attempt. Nothing was delivered, so data_started_at is cleared.
func (s *Sender) fail(row emailRow, cause error, rep *Report) error {
	if row.Attempts >= s.MaxAttempts {
		rep.Dead++
		return s.markDead(row, fmt.Sprintf("Gave up after %d attempts; the last one: %v", row.Attempts, cause))
	}
	rep.Failed++
	now := s.now()
	return sqlstore.Update(s.App.DB(), collection, row.ID, now, dbx.Params{
		"state": StateFailed, "last_error": truncate(cause.Error(), 2000), "data_started_at": "",
		"next_attempt_at": sqlstore.FormatTime(now.Add(s.Backoff.Delay(row.Attempts))),
	})
}

// markDead sends the email to the dead end with the reason a person reads, and files
// the email.dead ops event in the same transaction.
func (s *Sender) markDead(row emailRow, reason string) error {
	now := s.now()
	err := s.App.RunInTransaction(func(txApp core.App) error {
		if err := sqlstore.Update(txApp.DB(), collection, row.ID, now, dbx.Params{
			"state": StateDead, "last_error": truncate(reason, 4000),
		}); err != nil {
			return err
		}
		return opsevents.Record(txApp.DB(), now, opsevents.Event{
			EntityType: "email", EntityID: row.ID, Kind: "email.dead", Actor: "email-outbox-send",
			Message: "Email " + row.IdempotencyKey + " needs a person: " + truncate(reason, 300),
			Meta:    map[string]any{"attempts": row.Attempts, "message_id": row.MessageID},
		})
	})
	if err != nil {
		return fmt.Errorf("outbox: mark email %s dead: %w", row.ID, err)
	}
	s.App.Logger().Warn("email dead", slog.String("email", row.ID), slog.String("idempotency_key", row.IdempotencyKey),
		slog.String("reason", truncate(reason, 300)))
	return nil
}

// recoverStuck settles the rows a stopped run left in sending: before DATA nothing
// left, so they are pending again; after DATA started the server may have the
// message, so they are dead with that explanation.
func (s *Sender) recoverStuck(rep *Report) error {
	now := s.now()
	var rows []struct {
		emailRow
		DataStartedAt string `db:"data_started_at"`
	}
	err := s.App.DB().NewQuery(`SELECT id, idempotency_key, attempts, message_id, data_started_at FROM email_outbox
		WHERE state = 'sending' AND claimed_at <= {:before}`).
		Bind(dbx.Params{"before": sqlstore.FormatTime(now.Add(-s.StuckAfter()))}).All(&rows)
	if err != nil {
		return fmt.Errorf("outbox: list emails left in sending: %w", err)
	}
	for _, r := range rows {
		if r.DataStartedAt != "" {
			rep.Abandoned++
			reason := fmt.Sprintf("The sending process stopped after it began handing the message to the SMTP server (DATA at %s) and before the server confirmed, "+
				"so it may have been delivered. Check the recipient's mailbox for Message-ID <%s> before you replay it: opspine never sends it again by itself.",
				r.DataStartedAt, r.MessageID)
			if err := s.markDead(r.emailRow, reason); err != nil {
				return err
			}
			continue
		}
		rep.Requeued++
		if _, err := s.App.DB().NewQuery(`UPDATE email_outbox SET state = 'pending', next_attempt_at = {:now}, claimed_at = '',
			last_error = 'The sending process stopped before handing the message over; sent again.', updated = {:now}
			WHERE id = {:id} AND state = 'sending'`).Bind(dbx.Params{"id": r.ID, "now": sqlstore.FormatTime(now)}).Execute(); err != nil {
			return fmt.Errorf("outbox: requeue email %s: %w", r.ID, err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
