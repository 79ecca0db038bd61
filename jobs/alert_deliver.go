package jobs

import (
	"context"
	"time"

	"github.com/opspine/opspine/app/alerts"
)

// AlertDeliver sends the queued Slack notifications (alerts and the daily digest) that
// are due; failures are retried with backoff by later runs. Its timeout stays under the
// default one-minute interval, and each request is bounded by the sender's client.
func AlertDeliver(sender *alerts.Sender, schedule string) Job {
	return Job{
		Name: "alert-deliver", Schedule: schedule, Timeout: 50 * time.Second, RunAtStart: true,
		Run: func(ctx context.Context) (Outcome, error) {
			rep, err := sender.DeliverDue(ctx)
			return Outcome{Summary: rep.Summary(), Figures: rep.Figures()}, err
		},
	}
}
