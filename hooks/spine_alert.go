package hooks

import (
	"errors"
	"net/http"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/jobs"
)

// alertJobs are the scheduled jobs of the alert feature: alert-deliver sends the queued
// Slack messages on the job clock, so tests on a fake clock drive its backoff.
func (s *Spine) alertJobs() []jobs.Job {
	sender := &alerts.Sender{
		App:    s.App,
		Config: s.Config,
		HTTP:   &http.Client{Timeout: alerts.DefaultTimeout},
		Now:    s.Clock.Now,
	}
	return []jobs.Job{jobs.AlertDeliver(sender, s.Config.AlertDeliverSchedule)}
}

// bindAlertActions makes two admin UI edits the actions that own them: an alert's
// state set to resolved resolves it (resolved message, ops event), and a notification's
// state set to pending from dead or failed queues it again. Bind must register it
// before the derived-field guard, which rejects every other edit of these collections.
func (s *Spine) bindAlertActions() {
	s.App.OnRecordUpdateRequest("alerts").BindFunc(func(e *core.RecordRequestEvent) error {
		if e.Record.GetString("state") != alerts.StateResolved || e.Record.Original().GetString("state") != alerts.StateOpen {
			return e.Next()
		}
		if !onlyChanged(e, "state") {
			return e.BadRequestError("To resolve an alert by hand change only its state to resolved.", nil)
		}
		if err := alerts.ResolveAlertByHand(e.App, s.now(), e.Record.Id, actorOf(e.RequestEvent)); err != nil {
			return e.InternalServerError("Could not resolve the alert.", err)
		}
		return s.answerWithFresh(e, "alerts")
	})
	s.App.OnRecordUpdateRequest("alert_notifications").BindFunc(func(e *core.RecordRequestEvent) error {
		if e.Record.GetString("state") != alerts.NotificationPending || e.Record.Original().GetString("state") == alerts.NotificationPending {
			return e.Next()
		}
		if !onlyChanged(e, "state") {
			return e.BadRequestError("To send a message again change only its state to pending.", nil)
		}
		err := alerts.RequeueNotification(e.App, s.now(), e.Record.Id, actorOf(e.RequestEvent))
		if errors.Is(err, alerts.ErrAlreadySent) {
			return e.BadRequestError("The message was delivered already; it is not sent twice.", nil)
		}
		if errors.Is(err, alerts.ErrBeingSent) {
			return e.BadRequestError("The message is being sent right now; if opspine stopped meanwhile, the next alert-deliver run marks it dead within a few minutes and you can send it again then.", nil)
		}
		if err != nil {
			return e.InternalServerError("Could not queue the message again.", err)
		}
		return s.answerWithFresh(e, "alert_notifications")
	})
}
