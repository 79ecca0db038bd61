package labmail

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/app/settings"
	"github.com/opspine/opspine/app/sqlstore"
)

// PollJobName is the scheduler's name of the mailbox poll.
const PollJobName = "lab-email-poll"

// SLADays is how long a batch may wait on QA hold for its lab results.
var SLADays = settings.Register(settings.Setting{
	Key: "lab_sla_days", Default: 5, Unit: "days",
	Description: "Lab SLA: warn when a batch has been on QA hold longer than this many days. Default 5.",
})

func init() {
	monitor.Register(monitor.Check{Name: "lab-sla", Schedule: "0 * * * *", Run: checkLabSLA})
	monitor.Register(monitor.Check{Name: "lab-ingestion-health", Schedule: "*/15 * * * *", Run: checkLabIngestion})
	monitor.Register(monitor.Check{Name: "working-capital-on-hold", Schedule: "0 7 * * *", Run: checkWorkingCapitalOnHold})
}

// checkLabSLA warns about batches on QA hold longer than lab_sla_days.
func checkLabSLA(_ context.Context, env monitor.Env) (monitor.Result, error) {
	days := SLADays.Value(env.DB)
	cutoff := env.Now.Add(-time.Duration(days * float64(24*time.Hour)))
	var q struct {
		Late   int64  `db:"late"`
		Oldest string `db:"oldest"`
		Codes  string `db:"codes"`
	}
	err := env.DB.NewQuery(`SELECT COUNT(*) AS late, COALESCE(MIN(hold), '') AS oldest, COALESCE(group_concat(code, ', '), '') AS codes FROM
		(SELECT code, COALESCE(NULLIF(qa_hold_at, ''), produced_at) AS hold FROM batches
		 WHERE status = 'qa_hold' AND COALESCE(NULLIF(qa_hold_at, ''), produced_at) < {:cutoff} ORDER BY hold LIMIT 1000)`).
		Bind(dbx.Params{"cutoff": sqlstore.FormatTime(cutoff)}).One(&q)
	if err != nil {
		return monitor.Result{}, err
	}
	res := monitor.Result{Status: monitor.StatusOK, Title: "Batches are waiting too long for lab results",
		Summary: fmt.Sprintf("%d batches on QA hold longer than %.0f days", q.Late, days),
		Figures: map[string]any{"late_batches": q.Late, "sla_days": days}}
	if q.Late > 0 {
		res.Status = monitor.StatusWarning
		res.Summary += ": " + clip(q.Codes, 300) + ". Chase the lab or enter the results by hand."
		res.Fields = []alerts.Field{{Label: "Late batches", Value: fmt.Sprint(q.Late)}, {Label: "Oldest on hold since", Value: q.Oldest}}
	}
	return res, nil
}

// checkLabIngestion warns while lab emails wait in quarantine and goes critical when
// the mailbox has not been read successfully for three poll intervals.
func checkLabIngestion(_ context.Context, env monitor.Env) (monitor.Result, error) {
	var q struct {
		Quarantined int64 `db:"quarantined"`
		Failed      int64 `db:"failed"`
	}
	if err := env.DB.NewQuery(`SELECT
		(SELECT COUNT(*) FROM lab_emails WHERE state = 'quarantined') AS quarantined,
		(SELECT COUNT(*) FROM lab_emails WHERE state = 'failed') AS failed`).One(&q); err != nil {
		return monitor.Result{}, err
	}
	res := monitor.Result{Status: monitor.StatusOK, Title: "Lab email ingestion needs attention",
		Figures: map[string]any{"quarantined": q.Quarantined, "failed": q.Failed}}
	res.Summary = fmt.Sprintf("%d lab emails quarantined, %d failed", q.Quarantined, q.Failed)
	if q.Quarantined+q.Failed > 0 {
		res.Status = monitor.StatusWarning
		res.Summary += ": see lab_emails in the admin UI (state and reason), fix the pattern and reprocess, or attach by hand"
	}
	res.Fields = []alerts.Field{{Label: "Quarantined", Value: fmt.Sprint(q.Quarantined)}, {Label: "Failed", Value: fmt.Sprint(q.Failed)}}
	if env.Jobs == nil {
		return res, nil
	}
	jobs, err := env.Jobs()
	if err != nil {
		return res, err
	}
	for _, j := range jobs {
		if j.Name != PollJobName || j.Interval <= 0 {
			continue
		}
		since := env.Started
		if !j.LastSuccess.IsZero() {
			since = j.LastSuccess
		}
		age := env.Now.Sub(since)
		res.Figures["last_poll_success_minutes"] = math.Round(age.Minutes())
		if age > 3*j.Interval {
			res.Status = monitor.StatusCritical
			res.Summary += fmt.Sprintf("; the mailbox has not been read successfully for %.0f min (poll every %s): check OPSPINE_LAB_IMAP_* and the job's last error",
				age.Minutes(), j.Interval)
			res.Fields = append(res.Fields, alerts.Field{Label: "Last successful poll", Value: fmt.Sprintf("%.0f min ago", age.Minutes())})
		}
	}
	return res, nil
}

// checkWorkingCapitalOnHold reports the stock tied up on QA hold. Products carry no
// cost, so it reports units and kg, not money.
func checkWorkingCapitalOnHold(_ context.Context, env monitor.Env) (monitor.Result, error) {
	var q struct {
		Batches int64   `db:"batches"`
		Units   int64   `db:"units"`
		Kg      float64 `db:"kg"`
	}
	if err := env.DB.NewQuery(`SELECT COUNT(*) AS batches, COALESCE(SUM(quantity_units), 0) AS units, COALESCE(SUM(kg_produced), 0) AS kg
		FROM batches WHERE status = 'qa_hold'`).One(&q); err != nil {
		return monitor.Result{}, err
	}
	return monitor.Result{Status: monitor.StatusOK,
		Summary: fmt.Sprintf("%d batches on QA hold: %d units, %.1f kg (no value: products have no unit cost field)", q.Batches, q.Units, q.Kg),
		Figures: map[string]any{"batches": q.Batches, "units": q.Units, "kg": math.Round(q.Kg*10) / 10, "value_known": false},
	}, nil
}
