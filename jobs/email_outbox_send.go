package jobs

import (
	"context"
	"time"

	"github.com/opspine/opspine/app/outbox"
)

// emailSendTimeout stays under the shortest cron interval (a minute), so one run ends
// before the next is due; the sender stops taking emails a whole SMTP timeout before it.
const emailSendTimeout = 50 * time.Second

// EmailOutboxSend sends due emails from email_outbox over SMTP (SOP-05), and at each
// run settles the emails a stopped process left in sending.
func EmailOutboxSend(sender *outbox.Sender, schedule string) Job {
	return Job{
		Name: "email-outbox-send", Schedule: schedule, Timeout: emailSendTimeout, RunAtStart: true,
		Run: func(ctx context.Context) (Outcome, error) {
			rep, err := sender.SendDue(ctx)
			return Outcome{Summary: rep.Summary(), Figures: rep.Figures()}, err
		},
	}
}
