package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/opsevents"
	"github.com/opspine/opspine/app/retry"
	"github.com/opspine/opspine/app/sqlstore"
)

// Defaults of a Sender's zero fields.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultBatch       = 100
	defaultMaxAttempts = 10
	defaultRetryAfter  = time.Minute
	maxRetryAfter      = time.Hour
)

// DefaultBackoff spaces retries of a message Slack did not take: 30 s doubling to 1 h.
var DefaultBackoff = retry.Backoff{Base: 30 * time.Second, Max: time.Hour}

// Sender delivers queued notifications to Slack incoming webhooks; the alert-deliver
// job runs it. The Slack URLs are secrets: they appear in no error, log line, ops event
// or last_error.
type Sender struct {
	App    core.App
	Config config.Config
	// HTTP sends the requests; nil is a client with DefaultTimeout.
	HTTP *http.Client
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Backoff spaces retries after a failure; zero is DefaultBackoff.
	Backoff retry.Backoff
	// Batch bounds one run; zero is DefaultBatch.
	Batch int
}

// Report is what one DeliverDue run did.
type Report struct {
	Due    int
	Sent   int
	Failed int
	Dead   int
	// Deferred were left for a later run: their channel failed earlier in this run.
	Deferred int
	// Unrouted wait for a Slack URL to be configured.
	Unrouted int
	// Abandoned were left in sending by a process that stopped while Slack was being
	// called: they may have arrived, so they are dead, not sent again.
	Abandoned int
	// Left were not reached before the run's deadline.
	Left            int
	SlackConfigured bool
}

// Summary is the run's one line for monitoring_runs.
func (r Report) Summary() string {
	var b strings.Builder
	if r.Due == 0 {
		b.WriteString("nothing due")
	} else {
		fmt.Fprintf(&b, "%d due: %d sent, %d failed, %d dead", r.Due, r.Sent, r.Failed, r.Dead)
		if r.Deferred > 0 {
			fmt.Fprintf(&b, ", %d deferred (channel failing)", r.Deferred)
		}
		if r.Left > 0 {
			fmt.Fprintf(&b, ", %d left for the next run", r.Left)
		}
	}
	if r.Abandoned > 0 {
		fmt.Fprintf(&b, "; %d left in sending by a stopped process marked dead (they may have arrived: check the channel)", r.Abandoned)
	}
	switch {
	case !r.SlackConfigured:
		fmt.Fprintf(&b, "; Slack not configured: %d messages kept pending (set OPSPINE_SLACK_ALERTS_URL)", r.Unrouted)
	case r.Unrouted > 0:
		fmt.Fprintf(&b, "; %d messages kept pending: no Slack URL for their channel", r.Unrouted)
	}
	return b.String()
}

// Figures are the run's numbers for monitoring_runs.
func (r Report) Figures() map[string]any {
	return map[string]any{"due": r.Due, "sent": r.Sent, "failed": r.Failed, "dead": r.Dead,
		"deferred": r.Deferred, "left": r.Left, "abandoned": r.Abandoned, "not_configured": r.Unrouted, "slack_configured": r.SlackConfigured}
}

// notificationRow is a due notification.
type notificationRow struct {
	ID       string `db:"id"`
	Alert    string `db:"alert"`
	Kind     string `db:"kind"`
	Channel  string `db:"channel"`
	State    string `db:"state"`
	Title    string `db:"title"`
	Payload  string `db:"payload"`
	Attempts int    `db:"attempts"`
}

// DeliverDue settles the messages a stopped process left in sending, then sends the
// due notifications, oldest first, one request each. Each is claimed (sending) in a
// committed write before its request, so a crash during the request is seen by the
// next run and the message is not sent twice. Network calls happen outside any
// transaction; each outcome is recorded in its own short one.
func (s *Sender) DeliverDue(ctx context.Context) (Report, error) {
	rep := Report{SlackConfigured: s.Config.SlackAlertsURL != "" || s.Config.SlackUrgentURL != "" || s.Config.SlackDigestURL != ""}
	client := s.client()
	var err error
	if rep.Abandoned, err = s.abandonStuck(client.Timeout); err != nil {
		return rep, err
	}
	due, err := s.dueNotifications()
	if err != nil {
		return rep, err
	}
	rep.Due = len(due)
	failing := map[string]time.Time{} // URL → retry time, for channels that failed in this run
	for i, n := range due {
		// stop taking messages when one more request might outlive the job's deadline
		if deadline, ok := ctx.Deadline(); ctx.Err() != nil || (ok && time.Until(deadline) < client.Timeout) {
			rep.Left = len(due) - i
			break
		}
		target := s.urlFor(n.Channel)
		if target == "" {
			rep.Unrouted++
			continue
		}
		if until, ok := failing[target]; ok {
			rep.Deferred++
			if err := s.postpone(n, until); err != nil {
				return rep, err
			}
			continue
		}
		claimed, err := s.claim(n)
		if err != nil {
			return rep, err
		}
		if !claimed { // a person changed it since it was listed
			continue
		}
		var res attempt
		body, err := withBrand([]byte(n.Payload), s.Config.BrandName)
		if err != nil { // cannot happen to a message Raise wrote; must not block the queue behind it
			body, res = []byte(n.Payload), attempt{permanent: true, problem: err.Error()}
		} else {
			res = s.post(ctx, client, target, body)
		}
		if res.transport && ctx.Err() != nil {
			// stopped by shutdown, not by Slack: tried again next run (at least once:
			// Slack has no idempotency key, and a cut request may have arrived)
			rep.Left = len(due) - i
			if err := s.unclaim(n); err != nil {
				return rep, err
			}
			break
		}
		state, err := s.record(n, body, res)
		if err != nil {
			return rep, err
		}
		switch state {
		case NotificationSent:
			rep.Sent++
		case NotificationDead:
			rep.Dead++
		default:
			rep.Failed++
		}
		if !res.ok && !res.permanent { // the channel is down or busy: spare the rest of its queue this run
			failing[target] = time.Time{}
			if res.retryAfter > 0 {
				failing[target] = s.now().Add(res.retryAfter)
			}
		}
	}
	return rep, ctx.Err()
}

func (s *Sender) dueNotifications() ([]notificationRow, error) {
	batch := s.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	var rows []notificationRow
	err := s.App.DB().NewQuery(`SELECT id, alert, kind, channel, state, title, payload, attempts FROM alert_notifications
		WHERE (state = 'pending' OR state = 'failed') AND next_attempt_at <= {:now}
		ORDER BY created, rowid LIMIT {:limit}`).
		Bind(dbx.Params{"now": sqlstore.FormatTime(s.now()), "limit": batch}).All(&rows)
	if err != nil {
		return nil, fmt.Errorf("list due alert notifications: %w", err)
	}
	return rows, nil
}

// urlFor is the channel's Slack URL, or the alerts one when it has none; "" when neither is set.
func (s *Sender) urlFor(channel string) string {
	u := ""
	switch channel {
	case ChannelUrgent:
		u = s.Config.SlackUrgentURL
	case ChannelDigest:
		u = s.Config.SlackDigestURL
	}
	if u == "" {
		u = s.Config.SlackAlertsURL
	}
	return u
}

// postpone moves a notification whose channel is rate limited to the time Slack asked
// for, without counting an attempt; a zero time leaves it due.
func (s *Sender) postpone(n notificationRow, until time.Time) error {
	if until.IsZero() {
		return nil
	}
	return sqlstore.Update(s.App.DB(), "alert_notifications", n.ID, s.now(), dbx.Params{"next_attempt_at": sqlstore.FormatTime(until)})
}

// attempt is the outcome of one request to Slack.
type attempt struct {
	ok         bool
	permanent  bool          // Slack refused the message itself: retrying cannot help
	retryAfter time.Duration // rate limited: when to try again
	transport  bool          // no answer at all (connection error, timeout)
	problem    string        // for last_error; never holds the URL
}

func (s *Sender) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return &http.Client{Timeout: DefaultTimeout}
}

func (s *Sender) post(ctx context.Context, client *http.Client, target string, body []byte) attempt {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return attempt{permanent: true, problem: "the configured Slack URL is not a valid URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "opspine-alerts")
	res, err := client.Do(req)
	if err != nil {
		return attempt{transport: true, problem: redact(describeTransportError(err), target)}
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
	said := redact(strings.TrimSpace(string(answer)), target)
	problem := fmt.Sprintf("Slack answered HTTP %d: %s", res.StatusCode, truncate(said, 300))
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return attempt{ok: true}
	case res.StatusCode == http.StatusTooManyRequests:
		return attempt{retryAfter: retryAfter(res.Header.Get("Retry-After"), s.now()), problem: problem}
	case res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != http.StatusRequestTimeout:
		// invalid_payload, no_service, channel_not_found, action_prohibited ...
		return attempt{permanent: true, problem: problem}
	}
	return attempt{problem: problem}
}

// describeTransportError says why no answer came, without the request URL that
// net/http puts in its errors.
func describeTransportError(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var nerr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()) {
		return "no answer from Slack before the timeout"
	}
	return "could not reach Slack: " + err.Error()
}

// redact removes the URL, and its secret path on its own, from text.
func redact(text, target string) string {
	text = strings.ReplaceAll(text, target, "[slack url]")
	if u, err := url.Parse(target); err == nil && len(u.Path) > 1 {
		text = strings.ReplaceAll(text, u.Path, "/[redacted]")
	}
	return text
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); missing or
// unreadable is a minute, and at most an hour is honoured.
func retryAfter(h string, now time.Time) time.Duration {
	d := defaultRetryAfter
	if secs, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, time.Second), maxRetryAfter)
}

// record writes an attempt's outcome, the alert's delivery totals and, for a message
// that will never be sent, an ops event, in one transaction; it returns the new state.
func (s *Sender) record(n notificationRow, body []byte, res attempt) (string, error) {
	now := s.now()
	attempts := n.Attempts + 1
	cols := dbx.Params{"attempts": attempts, "payload": string(body), "claimed_at": ""}
	state := NotificationFailed
	switch {
	case res.ok:
		state = NotificationSent
		cols["sent_at"] = sqlstore.FormatTime(now)
		cols["last_error"] = ""
	case res.permanent:
		state = NotificationDead
		cols["last_error"] = res.problem
	case attempts >= s.maxAttempts():
		state = NotificationDead
		cols["last_error"] = fmt.Sprintf("gave up after %d attempts: %s", attempts, res.problem)
	case res.retryAfter > 0:
		cols["last_error"] = res.problem
		cols["next_attempt_at"] = sqlstore.FormatTime(now.Add(res.retryAfter))
	default:
		cols["last_error"] = res.problem
		cols["next_attempt_at"] = sqlstore.FormatTime(now.Add(s.backoff().Delay(attempts)))
	}
	cols["state"] = state
	err := s.App.RunInTransaction(func(txApp core.App) error {
		db := txApp.DB()
		if err := sqlstore.Update(db, "alert_notifications", n.ID, now, cols); err != nil {
			return err
		}
		if n.Alert != "" {
			if err := updateDeliveryTotals(db, n.Alert, now); err != nil {
				return err
			}
		}
		if state != NotificationDead {
			return nil
		}
		return opsevents.Record(db, now, opsevents.Event{
			EntityType: "alert_notification", EntityID: n.ID, Kind: "alert.delivery_dead", Actor: "alert-deliver",
			Message: fmt.Sprintf("Slack message %q (%s channel) needs a person: %s",
				truncate(n.Title, 150), n.Channel, truncate(cols["last_error"].(string), 300)),
			Meta: map[string]any{"alert": n.Alert, "kind": n.Kind, "channel": n.Channel, "attempts": attempts},
		})
	})
	if err != nil {
		return state, fmt.Errorf("record delivery of alert notification %s: %w", n.ID, err)
	}
	return state, nil
}

// updateDeliveryTotals keeps alerts.delivery_attempts and sent_at in step with the
// alert's notifications.
func updateDeliveryTotals(db dbx.Builder, alertID string, now time.Time) error {
	_, err := db.NewQuery(`UPDATE alerts SET
		delivery_attempts = (SELECT COALESCE(SUM(attempts), 0) FROM alert_notifications WHERE alert = {:id}),
		sent_at = COALESCE((SELECT MAX(sent_at) FROM alert_notifications WHERE alert = {:id} AND sent_at != ''), ''),
		updated = {:now}
		WHERE id = {:id}`).Bind(dbx.Params{"id": alertID, "now": sqlstore.FormatTime(now)}).Execute()
	if err != nil {
		return fmt.Errorf("update delivery totals of alert %s: %w", alertID, err)
	}
	return nil
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Sender) maxAttempts() int {
	if s.Config.AlertMaxAttempts > 0 {
		return s.Config.AlertMaxAttempts
	}
	return defaultMaxAttempts
}

func (s *Sender) backoff() retry.Backoff {
	if s.Backoff.Base > 0 {
		return s.Backoff
	}
	return DefaultBackoff
}
