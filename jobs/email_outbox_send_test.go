package jobs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/app/testkit"
	"github.com/opspine/opspine/jobs"
	"github.com/opspine/opspine/templates"
)

func TestEmailOutboxSendEndsWithinItsIntervalAndRecordsWhatItDid(t *testing.T) {
	app := testkit.NewApp(t)
	clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	sched, err := jobs.New(app, clock, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Shutdown() })
	sender := &outbox.Sender{App: app, SMTP: config.SMTP{Timeout: 30 * time.Second}, Brand: "Protocol Raw",
		MaxAttempts: 8, Backoff: outbox.DefaultBackoff, Now: clock.Now}
	job := jobs.EmailOutboxSend(sender, "* * * * *")
	if job.Name != "email-outbox-send" || job.Timeout >= time.Minute || !job.RunAtStart {
		t.Fatalf("job %s: timeout %s (must end before the next minute), run at start %v", job.Name, job.Timeout, job.RunAtStart)
	}
	must(t, sched.Register(job))
	sched.Start()

	_, _, err = outbox.Enqueue(app, clock.Now(), outbox.Email{To: []string{"production@copacker.test"}, Template: "copacker_label",
		Brand: "Protocol Raw", IdempotencyKey: "copacker_label:jobs-test",
		Data: templates.CopackerLabel{BatchCode: "PR-261121-003", ProducedOn: clock.Now(), KgProduced: 250, LabelFile: "label.pdf"}})
	must(t, err)
	var run monitor.Run
	waitFor(t, func() bool {
		run, err = sched.RunNow("email-outbox-send", "test")
		return err == nil
	})
	if run.Outcome != monitor.OutcomeOK || !strings.Contains(run.Summary, "SMTP is not configured") || run.Figures["waiting"] != 1 {
		t.Fatalf("run %s %q %v", run.Outcome, run.Summary, run.Figures)
	}
	last, ok, err := monitor.LastRun(app.DB(), "email-outbox-send")
	if err != nil || !ok || last.Summary != run.Summary {
		t.Fatalf("monitoring_runs: %+v %v %v", last, ok, err)
	}
}
