package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/opspine/opspine/app/labmail"
)

// labEmailPollTimeout bounds one poll: a slow mailbox gives up and the next run goes on
// from the last message finished.
const labEmailPollTimeout = 4 * time.Minute

// LabEmailPoll reads lab reports from the mailbox (SOP-LAB-01 §3.2) every interval, and
// once at start to pick up what arrived while the process was down.
func LabEmailPoll(poller *labmail.Poller, interval time.Duration) Job {
	timeout := labEmailPollTimeout
	if interval < 5*time.Minute {
		timeout = interval - 10*time.Second
	}
	return Job{
		Name: labmail.PollJobName, Schedule: CronEvery(interval), Timeout: timeout, RunAtStart: true,
		Run: func(ctx context.Context) (Outcome, error) {
			rep, err := poller.Poll(ctx)
			return Outcome{Summary: rep.Summary(), Figures: rep.Figures(), Alerted: rep.Quarantined > 0}, err
		},
	}
}

// CronEvery is the cron expression of "every d", d rounded to whole minutes (at least
// one); intervals that do not divide an hour or a day run on the nearest that does not
// exceed them.
func CronEvery(d time.Duration) string {
	m := int(d / time.Minute)
	switch {
	case m <= 1:
		return "* * * * *"
	case m < 60:
		for ; 60%m != 0; m-- {
		}
		return fmt.Sprintf("*/%d * * * *", m)
	case m < 24*60:
		h := m / 60
		for ; 24%h != 0; h-- {
		}
		if h == 1 {
			return "0 * * * *"
		}
		return fmt.Sprintf("0 */%d * * *", h)
	default:
		return "0 0 * * *"
	}
}
