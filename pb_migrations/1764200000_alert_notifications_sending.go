package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

const (
	notificationStateHelpBefore = "pending → sent; failed is retried with backoff; dead needs a person (Slack refused it or every attempt failed)"
	notificationStateHelp       = "pending → sending → sent; failed is retried with backoff; dead needs a person " +
		"(Slack refused it, every attempt failed, or opspine stopped while Slack was being called, so it may have arrived: check the channel before sending it again)"
)

// Slack messages are claimed (state sending, claimed_at) in a committed write before
// the request, as emails are, so a process killed while Slack is being called leaves
// a trace: the next run marks such a message dead with a note rather than sending it
// a second time.
func init() {
	m.Register(func(app core.App) error {
		return setNotificationStates(app, notificationStateHelp, true)
	}, func(app core.App) error {
		if _, err := app.DB().NewQuery(`UPDATE alert_notifications SET state = 'failed' WHERE state = 'sending'`).Execute(); err != nil {
			return err
		}
		return setNotificationStates(app, notificationStateHelpBefore, false)
	})
}

func setNotificationStates(app core.App, help string, claimable bool) error {
	c, err := app.FindCollectionByNameOrId("alert_notifications")
	if err != nil {
		return err
	}
	values := []string{"pending", "sent", "failed", "dead"}
	if claimable {
		values = []string{"pending", "sending", "sent", "failed", "dead"}
	}
	state := c.Fields.GetByName("state").(*core.SelectField)
	state.Values, state.Help = values, help
	if claimable {
		c.Fields.Add(dateField("claimed_at", "When alert-deliver took the message for its current request to Slack"))
	} else {
		c.Fields.RemoveByName("claimed_at")
	}
	return app.Save(c)
}
