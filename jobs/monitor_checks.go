package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/monitor"
)

// CheckEnv builds the environment of one check run at now.
type CheckEnv func(check string, now time.Time) (monitor.Env, error)

// MonitorCheck runs a registered check as the job monitor-<name>; its monitoring_runs
// row carries the check's status, figures and whether it alerted.
func MonitorCheck(c monitor.Check, env CheckEnv, now func() time.Time) Job {
	return Job{
		Name: monitor.JobName(c.Name), Kind: "check", Schedule: c.Schedule, Timeout: 50 * time.Second,
		Run: func(ctx context.Context) (Outcome, error) {
			e, err := env(c.Name, now().UTC())
			if err != nil {
				return Outcome{}, err
			}
			res, alerted, err := monitor.RunCheck(ctx, c, e)
			if err != nil {
				return Outcome{}, err
			}
			return Outcome{Summary: res.Summary, Figures: res.Figures, Status: string(res.Status), Alerted: alerted}, nil
		},
	}
}

// DailySnapshot posts the morning digest (yesterday's orders, revenue, failures, queue
// depths and open alerts) to the digest channel at 09:00 business time.
func DailySnapshot(app core.App, loc *time.Location, now func() time.Time) Job {
	return Job{
		Name: "daily-snapshot", Schedule: "0 9 * * *", Timeout: time.Minute,
		Run: func(ctx context.Context) (Outcome, error) {
			at := now().UTC()
			snap, err := monitor.DailySnapshot(app.DB(), at, loc)
			if err != nil {
				return Outcome{}, err
			}
			title := "Daily operations snapshot: " + snap.Day
			if err := alerts.PostDigest(app.DB(), at, title, "", snap.Fields()); err != nil {
				return Outcome{}, err
			}
			return Outcome{Summary: fmt.Sprintf("%s: %d orders, %d failed deliveries, %d open alerts", snap.Day, snap.Orders, snap.Failures, len(snap.Open)),
				Figures: map[string]any{"orders": snap.Orders, "revenue_minor": snap.Revenue, "failures": snap.Failures, "queues": snap.Queues, "open_alerts": len(snap.Open)}}, nil
		},
	}
}
