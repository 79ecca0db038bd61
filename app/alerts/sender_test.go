package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/alerts/alerttest"
	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/testkit"
)

// delivery is a test's world: a database, a fake Slack and a fake clock.
type delivery struct {
	t     *testing.T
	app   core.App
	slack *alerttest.Slack
	clock *clockwork.FakeClock
}

func newDelivery(t *testing.T) *delivery {
	return &delivery{t: t, app: newApp(t), slack: alerttest.NewSlack(t), clock: clockwork.NewFakeClockAt(t0)}
}

// hooks is a configuration with the named channels set ("urgent", "alerts", "digest").
func (d *delivery) hooks(names ...string) config.Config {
	cfg := config.Config{BrandName: "Protocol Raw", AlertMaxAttempts: 10}
	for _, n := range names {
		switch n {
		case "urgent":
			cfg.SlackUrgentURL = d.slack.Hook(n)
		case "alerts":
			cfg.SlackAlertsURL = d.slack.Hook(n)
		case "digest":
			cfg.SlackDigestURL = d.slack.Hook(n)
		}
	}
	return cfg
}

func (d *delivery) sender(cfg config.Config) *alerts.Sender {
	return &alerts.Sender{App: d.app, Config: cfg, HTTP: &http.Client{Timeout: 200 * time.Millisecond}, Now: d.clock.Now}
}

func (d *delivery) deliver(s *alerts.Sender) alerts.Report {
	d.t.Helper()
	rep, err := s.DeliverDue(context.Background())
	if err != nil {
		d.t.Fatalf("deliver: %v", err)
	}
	return rep
}

func (d *delivery) raise(a alerts.Alert) string {
	d.t.Helper()
	id, _, err := alerts.Raise(d.app.DB(), d.clock.Now(), a)
	if err != nil {
		d.t.Fatal(err)
	}
	return id
}

type queued struct {
	ID       string `db:"id"`
	State    string `db:"state"`
	Attempts int    `db:"attempts"`
	Next     string `db:"next_attempt_at"`
	Error    string `db:"last_error"`
	SentAt   string `db:"sent_at"`
	Payload  string `db:"payload"`
}

func (d *delivery) notification(where string) queued {
	d.t.Helper()
	var q queued
	if err := d.app.DB().NewQuery(`SELECT id, state, attempts, next_attempt_at, last_error, sent_at, payload FROM alert_notifications WHERE ` + where + ` ORDER BY created LIMIT 1`).One(&q); err != nil {
		d.t.Fatalf("notification %s: %v", where, err)
	}
	return q
}

// noSecrets fails when a Slack URL token shows up anywhere staff or logs could see it.
func (d *delivery) noSecrets() {
	d.t.Helper()
	for _, name := range []string{"urgent", "alerts", "digest"} {
		for _, q := range []string{
			`SELECT COUNT(*) FROM alert_notifications WHERE last_error LIKE {:s}`,
			`SELECT COUNT(*) FROM ops_events WHERE message LIKE {:s} OR meta LIKE {:s}`,
		} {
			var n int
			if err := d.app.DB().NewQuery(q).Bind(dbx.Params{"s": "%" + alerttest.Secret(name) + "%"}).Row(&n); err != nil {
				d.t.Fatal(err)
			}
			if n != 0 {
				d.t.Errorf("the %s webhook token leaked: %s", name, q)
			}
		}
	}
}

func alertOf(sev alerts.Severity, key string) alerts.Alert {
	return alerts.Alert{Severity: sev, Title: string(sev) + " " + key, Body: "body of " + key, DedupeKey: key, SourceCheck: "test_check"}
}

func TestEachSeverityGoesToItsChannelAndUnsetChannelsFallBackToAlerts(t *testing.T) {
	cases := []struct {
		name       string
		configured []string
		want       map[string]string // title → hook
	}{
		{"all set", []string{"urgent", "alerts", "digest"},
			map[string]string{"critical a": "urgent", "warning b": "alerts", "info c": "digest", "Daily snapshot": "digest"}},
		{"only alerts", []string{"alerts"},
			map[string]string{"critical a": "alerts", "warning b": "alerts", "info c": "alerts", "Daily snapshot": "alerts"}},
		{"no digest", []string{"urgent", "alerts"},
			map[string]string{"critical a": "urgent", "warning b": "alerts", "info c": "alerts", "Daily snapshot": "alerts"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDelivery(t)
			d.raise(alertOf(alerts.Critical, "a"))
			d.raise(alertOf(alerts.Warning, "b"))
			d.raise(alertOf(alerts.Info, "c"))
			if err := alerts.PostDigest(d.app.DB(), t0, "Daily snapshot", "Yesterday: 42 orders", []alerts.Field{{Label: "Orders", Value: "42"}}); err != nil {
				t.Fatal(err)
			}
			rep := d.deliver(d.sender(d.hooks(c.configured...)))
			if rep.Due != 4 || rep.Sent != 4 {
				t.Fatalf("report %+v: %s", rep, rep.Summary())
			}
			got := map[string]string{}
			for _, m := range d.slack.Accepted("") {
				for title := range c.want {
					if strings.HasSuffix(m.Header(), title) {
						got[title] = m.Hook
					}
				}
			}
			for title, hook := range c.want {
				if got[title] != hook {
					t.Errorf("%q went to %q, want %q", title, got[title], hook)
				}
			}
		})
	}
}

func TestTheSlackMessageHasHeaderBodyFieldsAndAContextLineWithTheBrand(t *testing.T) {
	d := newDelivery(t)
	fields := make([]alerts.Field, 12)
	for i := range fields {
		fields[i] = alerts.Field{Label: "Figure", Value: "<b> & co"}
	}
	d.raise(alerts.Alert{Severity: alerts.Critical, Title: strings.Repeat("Long title ", 30), Body: "1 < 2 & *bold*",
		Fields: fields, SourceCheck: "order_ingestion_slo", DedupeKey: "k"})
	d.deliver(d.sender(d.hooks("urgent")))
	got := d.slack.Accepted("urgent")
	if len(got) != 1 {
		t.Fatalf("%d messages accepted, want 1 (the fake refuses invalid Block Kit)", len(got))
	}
	m := got[0]
	if !strings.HasPrefix(m.Header(), ":red_circle: Critical: Long title") || len([]rune(m.Header())) != 150 || !strings.HasSuffix(m.Header(), "…") {
		t.Errorf("header %q", m.Header())
	}
	if !strings.HasPrefix(m.Text, ":red_circle: Critical: Long title") {
		t.Errorf("fallback text %q", m.Text)
	}
	if b := m.Blocks[1]; b.Text == nil || b.Text.Type != "mrkdwn" || b.Text.Text != "1 &lt; 2 &amp; *bold*" {
		t.Errorf("body block %+v", b)
	}
	if len(m.Blocks[2].Fields) != 10 || len(m.Blocks[3].Fields) != 2 || m.Blocks[2].Fields[0].Text != "*Figure*\n&lt;b&gt; &amp; co" {
		t.Errorf("field blocks %+v %+v", m.Blocks[2], m.Blocks[3])
	}
	if line := m.ContextLine(); line != "Check: `order_ingestion_slo` | *Protocol Raw*" {
		t.Errorf("context line %q", line)
	}
	// the stored payload is exactly the body Slack received
	if q := d.notification("state = 'sent'"); q.Payload != string(m.Raw) {
		t.Errorf("stored payload %s\nsent body %s", q.Payload, m.Raw)
	}
}

func TestSlackDownIsRetriedWithBackoffAndDeliveredOnceWhenItRecovers(t *testing.T) {
	d := newDelivery(t)
	id := d.raise(alertOf(alerts.Critical, "k"))
	s := d.sender(d.hooks("urgent", "alerts"))
	d.slack.Answer(alerttest.ServerError)
	rep := d.deliver(s)
	q := d.notification("1=1")
	if rep.Failed != 1 || q.State != "failed" || q.Attempts != 1 || !strings.Contains(q.Error, "HTTP 500") {
		t.Fatalf("after Slack answered 500: report %+v, notification %+v", rep, q)
	}
	// backoff base 30s with full jitter: due between 15s and 30s later
	if q.Next < "2026-11-21 09:00:15.000Z" || q.Next > "2026-11-21 09:00:30.000Z" {
		t.Errorf("next attempt at %s, want within 15-30s", q.Next)
	}
	d.clock.Advance(10 * time.Second)
	if rep := d.deliver(s); rep.Due != 0 || d.slack.Requests() != 1 {
		t.Fatalf("retried before its backoff: %+v", rep)
	}
	d.clock.Advance(20 * time.Second)
	d.slack.Answer(alerttest.Slow) // now it times out
	d.deliver(s)
	if q := d.notification("1=1"); q.State != "failed" || q.Attempts != 2 || q.Error != "no answer from Slack before the timeout" {
		t.Fatalf("after a timeout: %+v", q)
	}
	d.slack.Answer(alerttest.OK)
	d.clock.Advance(time.Minute) // second delay: 30s to 60s
	if rep := d.deliver(s); rep.Sent != 1 {
		t.Fatalf("not delivered after recovery: %+v", rep)
	}
	d.clock.Advance(time.Hour)
	d.deliver(s)
	if n := len(d.slack.Accepted("urgent")); n != 1 {
		t.Errorf("%d messages delivered, want exactly 1", n)
	}
	if q := d.notification("1=1"); q.State != "sent" || q.Attempts != 3 || q.Error != "" || q.SentAt != "2026-11-21 09:01:30.000Z" {
		t.Errorf("after delivery: %+v", q)
	}
	if n := testkit.Count(t, d.app, "alerts", "id = {:id} AND delivery_attempts = 3 AND sent_at = '2026-11-21 09:01:30.000Z'", dbx.Params{"id": id}); n != 1 {
		t.Error("alert's delivery_attempts/sent_at not kept from its notification")
	}
	d.noSecrets()
}

func TestOneFailingChannelDefersTheRestOfItsQueueNotOtherChannels(t *testing.T) {
	d := newDelivery(t)
	for _, k := range []string{"a", "b", "c"} {
		d.raise(alertOf(alerts.Critical, k))
	}
	d.raise(alertOf(alerts.Warning, "w"))
	d.slack.Answer(alerttest.Slow)
	s := d.sender(d.hooks("urgent", "alerts"))
	started := time.Now()
	rep := d.deliver(s)
	// one timeout on the first message, not one per message; then the alerts channel is tried too (and times out)
	if rep.Failed != 2 || rep.Deferred != 2 || d.slack.Requests() != 2 || time.Since(started) > 2*time.Second {
		t.Errorf("report %+v after %d requests in %s", rep, d.slack.Requests(), time.Since(started))
	}
	if n := testkit.Count(t, d.app, "alert_notifications", "state = 'pending' AND attempts = 0", nil); n != 2 {
		t.Errorf("%d deferred notifications untouched, want 2", n)
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	d := newDelivery(t)
	d.raise(alertOf(alerts.Warning, "a"))
	d.raise(alertOf(alerts.Warning, "b"))
	d.slack.Answer(alerttest.RateLimited)
	d.slack.RetryAfter("120")
	s := d.sender(d.hooks("alerts"))
	rep := d.deliver(s)
	if rep.Failed != 1 || rep.Deferred != 1 || d.slack.Requests() != 1 {
		t.Fatalf("report %+v after %d requests", rep, d.slack.Requests())
	}
	if n := testkit.Count(t, d.app, "alert_notifications", "next_attempt_at = '2026-11-21 09:02:00.000Z'", nil); n != 2 {
		t.Errorf("%d notifications wait the 120 s Slack asked for, want 2", n)
	}
	if q := d.notification("attempts = 1"); q.State != "failed" || !strings.Contains(q.Error, "HTTP 429") {
		t.Errorf("rate limited notification %+v", q)
	}
	d.slack.Answer(alerttest.OK)
	d.clock.Advance(119 * time.Second)
	if rep := d.deliver(s); rep.Due != 0 {
		t.Fatalf("sent before Retry-After: %+v", rep)
	}
	d.clock.Advance(time.Second)
	if rep := d.deliver(s); rep.Sent != 2 {
		t.Fatalf("after Retry-After: %+v", rep)
	}
}

func TestSlackRefusingTheMessageMakesItDeadAtOnceWithAnOpsEvent(t *testing.T) {
	d := newDelivery(t)
	d.raise(alertOf(alerts.Critical, "k"))
	d.slack.Answer(alerttest.NoService)
	rep := d.deliver(d.sender(d.hooks("urgent")))
	q := d.notification("1=1")
	if rep.Dead != 1 || q.State != "dead" || q.Attempts != 1 || q.Error != "Slack answered HTTP 404: no_service" {
		t.Fatalf("report %+v, notification %+v", rep, q)
	}
	if n := testkit.Count(t, d.app, "ops_events", "kind = 'alert.delivery_dead' AND entity_id = {:id} AND message LIKE '%no_service%'", dbx.Params{"id": q.ID}); n != 1 {
		t.Errorf("%d alert.delivery_dead events, want 1", n)
	}
	d.noSecrets()

	// the webhook is fixed; staff send it again
	d.slack.Answer(alerttest.OK)
	if err := alerts.RequeueNotification(d.app, d.clock.Now(), q.ID, "staff:abc"); err != nil {
		t.Fatal(err)
	}
	if rep := d.deliver(d.sender(d.hooks("urgent"))); rep.Sent != 1 {
		t.Fatalf("requeued message not sent: %+v", rep)
	}
	if err := alerts.RequeueNotification(d.app, d.clock.Now(), q.ID, "staff:abc"); !errors.Is(err, alerts.ErrAlreadySent) {
		t.Errorf("requeue of a sent message: %v", err)
	}
	if n := testkit.Count(t, d.app, "ops_events", "kind = 'alert.delivery_requeued' AND actor = 'staff:abc'", nil); n != 1 {
		t.Errorf("%d requeue events, want 1", n)
	}
}

func TestAfterTheLastAttemptAMessageIsDead(t *testing.T) {
	d := newDelivery(t)
	d.raise(alertOf(alerts.Warning, "k"))
	cfg := d.hooks("alerts")
	cfg.AlertMaxAttempts = 2
	s := d.sender(cfg)
	d.slack.Answer(alerttest.ServerError)
	d.deliver(s)
	d.clock.Advance(time.Minute)
	rep := d.deliver(s)
	q := d.notification("1=1")
	if rep.Dead != 1 || q.State != "dead" || q.Attempts != 2 || !strings.HasPrefix(q.Error, "gave up after 2 attempts: Slack answered HTTP 500") {
		t.Fatalf("report %+v, notification %+v", rep, q)
	}
	if n := testkit.Count(t, d.app, "ops_events", "kind = 'alert.delivery_dead'", nil); n != 1 {
		t.Errorf("%d alert.delivery_dead events, want 1", n)
	}
}

func TestWithoutASlackURLMessagesStayPendingUntilOneIsConfigured(t *testing.T) {
	d := newDelivery(t)
	d.raise(alertOf(alerts.Critical, "k"))
	if err := alerts.PostDigest(d.app.DB(), t0, "Daily snapshot", "", nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rep := d.deliver(d.sender(d.hooks()))
		if rep.Unrouted != 2 || rep.Sent+rep.Failed+rep.Dead != 0 || !strings.Contains(rep.Summary(), "Slack not configured") {
			t.Fatalf("report %+v: %s", rep, rep.Summary())
		}
		d.clock.Advance(time.Hour)
	}
	if n := testkit.Count(t, d.app, "alert_notifications", "state = 'pending' AND attempts = 0", nil); n != 2 {
		t.Fatalf("%d pending untouched, want 2", n)
	}
	open, _ := alerts.OpenAlerts(d.app.DB())
	if len(open) != 1 {
		t.Errorf("the alert is not shown as open: %+v", open)
	}
	// configured later (a restart with OPSPINE_SLACK_ALERTS_URL): both delivered
	rep := d.deliver(d.sender(d.hooks("alerts")))
	if rep.Sent != 2 || len(d.slack.Accepted("alerts")) != 2 || strings.Contains(rep.Summary(), "not configured") {
		t.Errorf("after configuring: %+v %s", rep, rep.Summary())
	}
}

func TestTheStoredPayloadIsValidSlackJSON(t *testing.T) {
	d := newDelivery(t)
	d.raise(alerts.Alert{Severity: alerts.Warning, Title: "t", DedupeKey: "k"}) // no body, no fields, no source
	var payload string
	if err := d.app.DB().NewQuery(`SELECT payload FROM alert_notifications`).Row(&payload); err != nil {
		t.Fatal(err)
	}
	var body struct {
		Text   string            `json:"text"`
		Blocks []json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(payload), &body); err != nil || body.Text == "" || len(body.Blocks) != 2 {
		t.Errorf("payload %s: %v", payload, err)
	}
	d.deliver(d.sender(d.hooks("alerts")))
	if n := len(d.slack.Accepted("alerts")); n != 1 {
		t.Errorf("minimal message refused by the fake Slack")
	}
}

func TestARunNearItsDeadlineLeavesTheRestForTheNextRun(t *testing.T) {
	d := newDelivery(t)
	d.raise(alertOf(alerts.Warning, "a"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond) // under the 200 ms request timeout
	defer cancel()
	rep, err := d.sender(d.hooks("alerts")).DeliverDue(ctx)
	if err != nil || rep.Left != 1 || d.slack.Requests() != 0 || !strings.Contains(rep.Summary(), "1 left for the next run") {
		t.Errorf("report %+v (%s), %v, %d requests", rep, rep.Summary(), err, d.slack.Requests())
	}
	if q := d.notification("1=1"); q.State != "pending" || q.Attempts != 0 {
		t.Errorf("notification %+v", q)
	}
}

func TestTheResolvedMessageSaysHowLongTheConditionLasted(t *testing.T) {
	d := newDelivery(t)
	for range 3 {
		d.raise(alertOf(alerts.Critical, "k"))
	}
	d.clock.Advance(2*time.Hour + 5*time.Minute)
	if _, err := alerts.Resolve(d.app.DB(), d.clock.Now(), "k"); err != nil {
		t.Fatal(err)
	}
	d.deliver(d.sender(d.hooks("urgent")))
	got := d.slack.Accepted("urgent")
	if len(got) != 2 {
		t.Fatalf("%d messages, want firing and resolved", len(got))
	}
	m := got[1]
	if m.Header() != ":white_check_mark: Resolved: critical k" || m.Blocks[1].Text.Text != "The condition has cleared after 2 h 05 min (raised 3 times)." ||
		!strings.HasPrefix(m.ContextLine(), "Check: `test_check` · open since <!date^1795251600^{date_short_pretty} {time}|2026-11-21 09:00 UTC>") {
		t.Errorf("resolved message %s", m.Raw)
	}
}
