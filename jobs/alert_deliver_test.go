package jobs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/alerts/alerttest"
	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/app/testkit"
	"github.com/opspine/opspine/jobs"
)

var alertStart = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// startWithSlack runs opspine with its Slack URLs pointing at a fake Slack (the named
// channels only).
func startWithSlack(t *testing.T, channels ...string) (*testkit.Server, *alerttest.Slack) {
	t.Helper()
	slack := alerttest.NewSlack(t)
	env := map[string]string{}
	for _, c := range channels {
		env["OPSPINE_SLACK_"+strings.ToUpper(c)+"_URL"] = slack.Hook(c)
	}
	return testkit.StartServer(t, testkit.Config(t, env), alertStart), slack
}

// deliverNow runs alert-deliver as the scheduler would, and expects it to succeed.
func deliverNow(t *testing.T, s *testkit.Server) monitor.Run {
	t.Helper()
	run, err := s.Spine.Scheduler.RunNow("alert-deliver", "test")
	if err != nil || run.Outcome != monitor.OutcomeOK {
		t.Fatalf("alert-deliver: %v %+v", err, run)
	}
	return run
}

func TestAlertDeliverIsScheduledAsConfiguredAndEndsBeforeTheNextRun(t *testing.T) {
	job := jobs.AlertDeliver(&alerts.Sender{}, "*/2 * * * *")
	if job.Name != "alert-deliver" || job.Schedule != "*/2 * * * *" || job.Timeout >= time.Minute || !job.RunAtStart {
		t.Errorf("job %s %q: timeout %s, run at start %v", job.Name, job.Schedule, job.Timeout, job.RunAtStart)
	}
}

func headers(msgs []alerttest.Message) string {
	var h []string
	for _, m := range msgs {
		h = append(h, m.Hook+": "+m.Header())
	}
	return strings.Join(h, "\n")
}

func TestAlertDeliverSendsOneMessagePerChangeOfACondition(t *testing.T) {
	s, slack := startWithSlack(t, "urgent", "alerts", "digest")
	db := s.App.DB()
	warn := alerts.Alert{Severity: alerts.Warning, Title: "Retry queue is growing", Body: "120 deliveries wait for a retry.",
		SourceCheck: "retry_queue_depth", DedupeKey: "retry_queue_depth"}
	raise := func(a alerts.Alert) {
		t.Helper()
		if _, _, err := alerts.Raise(db, s.Clock.Now(), a); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 { // a check every run, inside the cooldown
		raise(warn)
	}
	run := deliverNow(t, s)
	if run.Summary != "1 due: 1 sent, 0 failed, 0 dead" {
		t.Errorf("run summary %q", run.Summary)
	}
	if n := testkit.Count(t, s.App, "alerts", "occurrences = 50 AND state = 'open'", nil); n != 1 {
		t.Errorf("%d open alerts seen 50 times, want 1", n)
	}

	s.Clock.Advance(61 * time.Minute) // past the 60 minute cooldown: one reminder
	raise(warn)
	raise(warn)
	deliverNow(t, s)

	critical := warn
	critical.Severity = alerts.Critical // worse, inside the new cooldown: at once, to the urgent channel
	raise(critical)
	deliverNow(t, s)

	if resolved, err := alerts.Resolve(db, s.Clock.Now(), warn.DedupeKey); err != nil || !resolved {
		t.Fatalf("resolve: %v %v", resolved, err)
	}
	if resolved, _ := alerts.Resolve(db, s.Clock.Now(), warn.DedupeKey); resolved {
		t.Error("resolved twice")
	}
	deliverNow(t, s)
	deliverNow(t, s) // nothing left

	want := strings.Join([]string{
		"alerts: :warning: Warning: Retry queue is growing",
		"alerts: :warning: Still open (warning): Retry queue is growing",
		"urgent: :red_circle: Escalated to critical: Retry queue is growing",
		"urgent: :white_check_mark: Resolved: Retry queue is growing",
	}, "\n")
	if got := headers(slack.Accepted("")); got != want {
		t.Errorf("Slack received:\n%s\nwant:\n%s", got, want)
	}
	if got := slack.Accepted("alerts")[1].ContextLine(); !strings.Contains(got, "raised 51 times") || !strings.HasSuffix(got, "| *opspine*") {
		t.Errorf("reminder context %q", got)
	}
}

func TestAlertDeliverRetriesWhileSlackIsDownOnTheJobClock(t *testing.T) {
	s, slack := startWithSlack(t, "alerts")
	slack.Answer(alerttest.ServerError)
	if _, _, err := alerts.Raise(s.App.DB(), s.Clock.Now(), alerts.Alert{Severity: alerts.Critical, Title: "Heartbeat missed", DedupeKey: "heartbeat"}); err != nil {
		t.Fatal(err)
	}
	if run := deliverNow(t, s); run.Summary != "1 due: 0 sent, 1 failed, 0 dead" {
		t.Fatalf("summary %q", run.Summary)
	}
	slack.Answer(alerttest.OK)
	deliverNow(t, s) // still inside its backoff (15 to 30 s)
	if n := len(slack.Accepted("")); n != 0 {
		t.Fatalf("%d messages delivered before the backoff passed", n)
	}
	s.Clock.Advance(31 * time.Second)
	deliverNow(t, s)
	deliverNow(t, s)
	if n := len(slack.Accepted("alerts")); n != 1 {
		t.Errorf("%d messages delivered after Slack recovered, want 1 (critical falls back to the alerts URL)", n)
	}
	if n := testkit.Count(t, s.App, "monitoring_runs", "summary LIKE {:s} OR error LIKE {:s}", map[string]any{"s": "%" + alerttest.Secret("alerts") + "%"}); n != 0 {
		t.Errorf("the Slack URL token is in %d monitoring runs", n)
	}
}

func TestAlertDeliverWithoutSlackKeepsMessagesPendingAndSaysSo(t *testing.T) {
	s, _ := startWithSlack(t)
	if err := alerts.PostDigest(s.App.DB(), s.Clock.Now(), "Daily snapshot", "", nil); err != nil {
		t.Fatal(err)
	}
	run := deliverNow(t, s)
	if !strings.Contains(run.Summary, "Slack not configured: 1 messages kept pending") || run.Figures["not_configured"] != 1 {
		t.Errorf("run %q %v", run.Summary, run.Figures)
	}
	if n := testkit.Count(t, s.App, "alert_notifications", "state = 'pending' AND attempts = 0", nil); n != 1 {
		t.Errorf("%d pending messages, want 1", n)
	}
}
