package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// alerts are the conditions the monitoring checks raise, one open row per dedupe key;
// alert_notifications are the Slack messages about them (and the daily digest), each
// delivered and retried on its own by the alert-deliver job, and kept as history.
// Both are written by opspine (app/alerts) and read by staff.
func init() {
	m.Register(createAlertCollections, dropCollections("alert_notifications", "alerts"))
}

func createAlertCollections(app core.App) error {
	alerts := core.NewBaseCollection("alerts")
	alerts.Fields.Add(
		selectField("severity", "Current severity; critical goes to the urgent Slack channel, warning to alerts, info to the digest", "info", "warning", "critical"),
		requiredText("title", "What is wrong, in one line"),
		longText("body", "Details from the latest check run"),
		jsonField("fields", "Figures from the latest check run: [{label, value}]"),
		textField("source_check", "The check that raised it, e.g. order_ingestion_slo"),
		requiredText("dedupe_key", "One open alert per key: raising it again updates this row instead of opening another"),
		selectField("state", "open until the check reports the condition cleared (one resolved message follows)", "open", "resolved"),
		nonNegativeInt("occurrences", "How many times the check raised it while open"),
		dateField("last_seen_at", "When a check last raised it"),
		dateField("last_notified_at", "When a Slack message about it was last queued; the cooldown runs from here"),
		&core.SelectField{Name: "notified_severity", Help: "Severity of the last firing, reminder or escalated message; a higher one notifies at once",
			Values: []string{"info", "warning", "critical"}, MaxSelect: 1},
		nonNegativeInt("delivery_attempts", "Delivery attempts of all its Slack messages (alert_notifications)"),
		dateField("sent_at", "When a Slack message about it was last delivered"),
		dateField("resolved_at", ""),
	)
	alerts.Fields.Add(timestamps()...)
	// no parentheses in the WHERE: PocketBase's index parser would cut the statement there
	alerts.AddIndex("idx_alerts_open_dedupe_key", true, "dedupe_key", "state = 'open'")
	alerts.AddIndex("idx_alerts_state_created", false, "state, created", "")
	readableByStaff(alerts)
	if err := app.Save(alerts); err != nil {
		return err
	}

	notifications := core.NewBaseCollection("alert_notifications")
	notifications.Fields.Add(
		relationField("alert", "The alert it is about; empty for the daily digest", alerts),
		selectField("kind", "firing: newly opened; reminder: still open after the cooldown; escalated: severity went up; resolved; digest",
			"firing", "reminder", "escalated", "resolved", "digest"),
		selectField("severity", "", "info", "warning", "critical"),
		selectField("channel", "urgent, alerts or digest: OPSPINE_SLACK_URGENT_URL, _ALERTS_URL or _DIGEST_URL (unset ones fall back to the alerts URL)",
			"urgent", "alerts", "digest"),
		textField("title", "The message's headline"),
		jsonField("payload", "The exact Slack incoming-webhook body"),
		selectField("state", "pending → sent; failed is retried with backoff; dead needs a person (Slack refused it or every attempt failed)",
			"pending", "sent", "failed", "dead"),
		nonNegativeInt("attempts", "Delivery attempts so far"),
		dateField("next_attempt_at", "When the alert-deliver job tries it (again)"),
		longText("last_error", "Slack's answer or the network error of the last failed attempt"),
		dateField("sent_at", "When Slack accepted it"),
	)
	notifications.Fields.Add(timestamps()...)
	notifications.AddIndex("idx_alert_notifications_due", false, "state, next_attempt_at", "state = 'pending' OR state = 'failed'")
	notifications.AddIndex("idx_alert_notifications_state_created", false, "state, created", "")
	notifications.AddIndex("idx_alert_notifications_alert", false, "alert", "alert != ''")
	readableByStaff(notifications)
	return app.Save(notifications)
}
