package monitor

import (
	"context"
	"fmt"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/settings"
	"github.com/opspine/opspine/app/sqlstore"
)

var (
	retryDepthWarn    = settings.Register(settings.Setting{Key: "retry_queue_warning", Default: 50, Unit: "deliveries", Description: "Warn when this many deliveries wait for a retry. Default 50."})
	retryDepthCrit    = settings.Register(settings.Setting{Key: "retry_queue_critical", Default: 500, Unit: "deliveries", Description: "Critical at this many deliveries waiting for a retry. Default 500 (reference: backlog under 500)."})
	outboxPendingWarn = settings.Register(settings.Setting{Key: "outbox_oldest_pending_warning_minutes", Default: 10, Unit: "minutes", Description: "Emails and alert messages: warn when one has waited this long to leave. Default 10."})
	outboxPendingCrit = settings.Register(settings.Setting{Key: "outbox_oldest_pending_critical_minutes", Default: 30, Unit: "minutes", Description: "Emails and alert messages: critical when one has waited this long. Default 30."})
)

func init() {
	Register(Check{Name: "retry-queue-depth", Schedule: "*/5 * * * *", Run: checkRetryQueue})
	Register(Check{Name: "outbox-health", Schedule: "*/2 * * * *", Run: checkOutbox})
}

// checkRetryQueue watches deliveries waiting for a retry.
func checkRetryQueue(_ context.Context, env Env) (Result, error) {
	var q struct {
		Depth  int64  `db:"depth"`
		Oldest string `db:"oldest"`
	}
	if err := env.DB.NewQuery(`SELECT COUNT(*) AS depth, COALESCE(MIN(received_at), '') AS oldest
		FROM webhook_inbox WHERE status = 'failed'`).One(&q); err != nil {
		return Result{}, err
	}
	age, err := minutesSince(env, q.Oldest)
	if err != nil {
		return Result{}, err
	}
	status := level(float64(q.Depth), retryDepthWarn.Value(env.DB), retryDepthCrit.Value(env.DB))
	return Result{Status: status, Title: "Deliveries are piling up for retry",
		Summary: fmt.Sprintf("%d deliveries wait for a retry, the oldest received %.0f min ago", q.Depth, age),
		Figures: map[string]any{"depth": q.Depth, "oldest_minutes": round1(age)},
		Fields:  []alerts.Field{{Label: "Waiting for retry", Value: fmt.Sprint(q.Depth)}, {Label: "Oldest", Value: fmt.Sprintf("%.0f min", age)}},
	}, nil
}

// outboxQueue is one outgoing queue's health.
type outboxQueue struct {
	Pending int64  `db:"pending"`
	Oldest  string `db:"oldest"`
	Dead    int64  `db:"dead"`
}

// readOutboxQueue counts what waits to leave and what died in the last day (older dead
// rows stay visible in the admin UI but no longer keep the alert open).
func readOutboxQueue(env Env, table string) (outboxQueue, error) {
	var q outboxQueue
	err := env.DB.NewQuery(fmt.Sprintf(`SELECT
		(SELECT COUNT(*) FROM %[1]s WHERE state IN ('pending', 'failed', 'sending')) AS pending,
		(SELECT COALESCE(MIN(created), '') FROM %[1]s WHERE state IN ('pending', 'failed', 'sending')) AS oldest,
		(SELECT COUNT(*) FROM %[1]s WHERE state = 'dead' AND updated >= {:day}) AS dead`, table)).
		Bind(dbx.Params{"day": sqlstore.FormatTime(env.Now.Add(-24 * time.Hour))}).One(&q)
	return q, err
}

// checkOutbox watches what leaves: emails and alert messages, the oldest waiting and
// the dead ones a person has to look at. Alert messages only count as stuck when Slack
// is configured: without it they are kept on purpose.
func checkOutbox(_ context.Context, env Env) (Result, error) {
	email, err := readOutboxQueue(env, "email_outbox")
	if err != nil {
		return Result{}, fmt.Errorf("email outbox: %w", err)
	}
	slack, err := readOutboxQueue(env, "alert_notifications")
	if err != nil {
		return Result{}, fmt.Errorf("alert notifications: %w", err)
	}
	emailAge, err := minutesSince(env, email.Oldest)
	if err != nil {
		return Result{}, err
	}
	slackAge, err := minutesSince(env, slack.Oldest)
	if err != nil {
		return Result{}, err
	}
	if !env.SlackConfigured {
		slackAge = 0
	}
	warn, crit := outboxPendingWarn.Value(env.DB), outboxPendingCrit.Value(env.DB)
	status := Worse(level(emailAge, warn, crit), level(slackAge, warn, crit))
	if email.Dead > 0 || (slack.Dead > 0 && env.SlackConfigured) {
		status = Worse(status, StatusWarning)
	}
	return Result{Status: status, Title: "Emails or alerts are not leaving",
		Summary: fmt.Sprintf("email: %d waiting (oldest %.0f min), %d dead in 24 h; Slack: %d waiting (oldest %.0f min), %d dead in 24 h",
			email.Pending, emailAge, email.Dead, slack.Pending, slackAge, slack.Dead),
		Figures: map[string]any{
			"email_pending": email.Pending, "email_oldest_minutes": round1(emailAge), "email_dead_24h": email.Dead,
			"alerts_pending": slack.Pending, "alerts_oldest_minutes": round1(slackAge), "alerts_dead_24h": slack.Dead,
			"slack_configured": env.SlackConfigured,
		},
		Fields: []alerts.Field{
			{Label: "Emails waiting", Value: fmt.Sprintf("%d (oldest %.0f min)", email.Pending, emailAge)},
			{Label: "Dead emails", Value: fmt.Sprint(email.Dead)},
			{Label: "Dead alert messages", Value: fmt.Sprint(slack.Dead)},
		},
	}, nil
}

func minutesSince(env Env, stored string) (float64, error) {
	if stored == "" {
		return 0, nil
	}
	t, err := sqlstore.ParseTime(stored)
	if err != nil {
		return 0, err
	}
	return env.Now.Sub(t).Minutes(), nil
}
