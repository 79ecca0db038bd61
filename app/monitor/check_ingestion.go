package monitor

import (
	"context"
	"fmt"
	"strings"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/settings"
	"github.com/opspine/opspine/app/sqlstore"
)

// Thresholds of the order ingestion SLO (reference: webhook p95 under 500 ms; backlog
// oldest pending under 15 minutes).
var (
	ingestPendingWarn  = settings.Register(settings.Setting{Key: "ingest_oldest_pending_warning_minutes", Default: 5, Unit: "minutes", Description: "Order ingestion: warn when a delivery has waited this long to be processed. Default 5."})
	ingestPendingCrit  = settings.Register(settings.Setting{Key: "ingest_oldest_pending_critical_minutes", Default: 15, Unit: "minutes", Description: "Order ingestion: critical when a delivery has waited this long. Default 15."})
	ingestFailuresWarn = settings.Register(settings.Setting{Key: "ingest_failures_hour_warning", Default: 1, Unit: "deliveries", Description: "Order ingestion: warn at this many failed or dead deliveries received in the last hour. Default 1."})
	ingestFailuresCrit = settings.Register(settings.Setting{Key: "ingest_failures_hour_critical", Default: 20, Unit: "deliveries", Description: "Order ingestion: critical at this many failed or dead deliveries in the last hour. Default 20."})
	ingestP95Warn      = settings.Register(settings.Setting{Key: "ingest_p95_processing_warning_ms", Default: 500, Unit: "ms", Description: "Order ingestion: warn when the 95th percentile processing time in the last hour reaches this. Default 500."})
	ingestP95Crit      = settings.Register(settings.Setting{Key: "ingest_p95_processing_critical_ms", Default: 2000, Unit: "ms", Description: "Order ingestion: critical p95 processing time. Default 2000."})
)

func init() {
	Register(Check{Name: "order-ingestion-slo", Schedule: "*/2 * * * *", Run: checkOrderIngestion})
}

// checkOrderIngestion watches Shopify ingestion: the oldest delivery still waiting,
// failures and the 95th percentile processing time over the last hour, and dead letters
// since the previous run.
func checkOrderIngestion(_ context.Context, env Env) (Result, error) {
	db := env.DB
	hourAgo := sqlstore.FormatTime(env.Now.Add(-60 * 60e9))
	var oldest string
	if err := db.NewQuery(`SELECT COALESCE(MIN(received_at), '') FROM webhook_inbox WHERE status = 'pending'`).Row(&oldest); err != nil {
		return Result{}, err
	}
	pendingMinutes := 0.0
	if oldest != "" {
		t, err := sqlstore.ParseTime(oldest)
		if err != nil {
			return Result{}, err
		}
		pendingMinutes = env.Now.Sub(t).Minutes()
	}
	var failures int64
	if err := db.NewQuery(`SELECT COUNT(*) FROM webhook_inbox WHERE status IN ('failed', 'dead') AND received_at >= {:since}`).
		Bind(dbx.Params{"since": hourAgo}).Row(&failures); err != nil {
		return Result{}, err
	}
	var processed int64
	if err := db.NewQuery(`SELECT COUNT(*) FROM webhook_inbox WHERE processed_at >= {:since}`).
		Bind(dbx.Params{"since": hourAgo}).Row(&processed); err != nil {
		return Result{}, err
	}
	var p95 int64
	if processed > 0 {
		if err := db.NewQuery(`SELECT processing_ms FROM webhook_inbox WHERE processed_at >= {:since}
			ORDER BY processing_ms LIMIT 1 OFFSET {:offset}`).
			Bind(dbx.Params{"since": hourAgo, "offset": processed * 95 / 100}).Row(&p95); err != nil {
			return Result{}, err
		}
	}
	deadSince := env.PreviousRun
	if deadSince.IsZero() {
		deadSince = env.Now.Add(-60 * 60e9)
	}
	var deadLetters int64
	if err := db.NewQuery(`SELECT COUNT(*) FROM dead_letters WHERE created >= {:since} AND source LIKE 'shopify%'`).
		Bind(dbx.Params{"since": sqlstore.FormatTime(deadSince)}).Row(&deadLetters); err != nil {
		return Result{}, err
	}

	status := level(pendingMinutes, ingestPendingWarn.Value(db), ingestPendingCrit.Value(db))
	status = Worse(status, level(float64(failures), ingestFailuresWarn.Value(db), ingestFailuresCrit.Value(db)))
	status = Worse(status, level(float64(p95), ingestP95Warn.Value(db), ingestP95Crit.Value(db)))
	if deadLetters > 0 {
		status = Worse(status, StatusWarning)
	}
	figures := map[string]any{
		"oldest_pending_minutes": round1(pendingMinutes), "failures_last_hour": failures,
		"processed_last_hour": processed, "p95_processing_ms": p95, "dead_letters_since_last_run": deadLetters,
	}
	var problems []string
	if pendingMinutes >= ingestPendingWarn.Value(db) {
		problems = append(problems, fmt.Sprintf("a delivery has waited %.0f min", pendingMinutes))
	}
	if failures > 0 {
		problems = append(problems, fmt.Sprintf("%d failed or dead in the last hour", failures))
	}
	if float64(p95) >= ingestP95Warn.Value(db) {
		problems = append(problems, fmt.Sprintf("p95 processing %d ms", p95))
	}
	if deadLetters > 0 {
		problems = append(problems, fmt.Sprintf("%d new dead letter(s): see dead_letters", deadLetters))
	}
	summary := fmt.Sprintf("%d processed in the last hour, p95 %d ms, oldest pending %.1f min, %d failures, %d new dead letters",
		processed, p95, pendingMinutes, failures, deadLetters)
	if len(problems) > 0 {
		summary = "Order ingestion: " + strings.Join(problems, "; ")
	}
	return Result{Status: status, Summary: summary, Figures: figures, Title: "Shopify orders are not flowing normally",
		Fields: []alerts.Field{
			{Label: "Oldest pending", Value: fmt.Sprintf("%.1f min", pendingMinutes)},
			{Label: "Failures (1 h)", Value: fmt.Sprint(failures)},
			{Label: "p95 processing", Value: fmt.Sprintf("%d ms", p95)},
			{Label: "New dead letters", Value: fmt.Sprint(deadLetters)},
		}}, nil
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
