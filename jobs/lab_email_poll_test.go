package jobs_test

import (
	"testing"
	"time"

	"github.com/opspine/opspine/app/labmail"
	"github.com/opspine/opspine/jobs"
)

// TestCronEveryTurnsTheIntervalIntoASchedule: OPSPINE_LAB_IMAP_INTERVAL becomes the cron
// expression of lab-email-poll, never running less often than asked.
func TestCronEveryTurnsTheIntervalIntoASchedule(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second: "* * * * *", time.Minute: "* * * * *", 5 * time.Minute: "*/5 * * * *",
		7 * time.Minute: "*/6 * * * *", 15 * time.Minute: "*/15 * * * *", time.Hour: "0 * * * *",
		5 * time.Hour: "0 */4 * * *", 6 * time.Hour: "0 */6 * * *", 48 * time.Hour: "0 0 * * *",
	} {
		if got := jobs.CronEvery(d); got != want {
			t.Errorf("CronEvery(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestLabEmailPollJobShape: the job is named lab-email-poll, runs at start to pick up
// mail that arrived while stopped, and ends before its next run is due.
func TestLabEmailPollJobShape(t *testing.T) {
	for _, interval := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour} {
		j := jobs.LabEmailPoll(&labmail.Poller{}, interval)
		if j.Name != "lab-email-poll" || !j.RunAtStart || j.Timeout <= 0 || j.Timeout >= interval || j.Schedule != jobs.CronEvery(interval) {
			t.Errorf("interval %s: job %+v", interval, j)
		}
	}
}
