package benchmark

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/monitor"
	_ "github.com/opspine/opspine/pb_migrations"
)

// TargetCheck is the ceiling for one monitoring check on a large database.
const TargetCheck = 100 * time.Millisecond

// CheckTiming is one check's median time over several runs on a database of Rows
// orders and Rows inbox rows.
type CheckTiming struct {
	Check  string
	Rows   int
	Median time.Duration
}

// MeasureChecks fills a fresh database with rows orders and rows webhook_inbox rows
// (a realistic mix: almost all processed, a few pending, failed and dead, spread over
// 90 days) and as many monitoring_runs rows, then times every registered check
// (median of five runs).
func MeasureChecks(rows int) ([]CheckTiming, error) {
	dir, err := os.MkdirTemp("", "opspine-checks-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: dir})
	if err := app.Bootstrap(); err != nil {
		return nil, err
	}
	defer app.ResetBootstrapState()
	if err := app.RunAllMigrations(); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if err := fillForChecks(app, rows, now); err != nil {
		return nil, err
	}
	// job-health reads each job's last success from monitoring_runs, as in production
	jobs := func() ([]monitor.JobHealth, error) {
		var out []monitor.JobHealth
		for i := range benchJobs {
			name := fmt.Sprintf("bench-job-%d", i)
			last, err := monitor.LastSuccess(app.DB(), name)
			if err != nil {
				return nil, err
			}
			out = append(out, monitor.JobHealth{Name: name, Interval: time.Minute, LastSuccess: last})
		}
		return out, nil
	}
	env := monitor.Env{DB: app.DB(), Now: now, PreviousRun: now.Add(-2 * time.Minute), Started: now.Add(-time.Hour), Jobs: jobs}
	var out []CheckTiming
	for _, c := range monitor.Checks() {
		var times []time.Duration
		for range 5 {
			start := time.Now()
			if _, err := c.Run(context.Background(), env); err != nil {
				return nil, fmt.Errorf("check %s: %w", c.Name, err)
			}
			times = append(times, time.Since(start))
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		out = append(out, CheckTiming{Check: c.Name, Rows: rows, Median: times[len(times)/2]})
	}
	return out, nil
}

// benchJobs is how many jobs share the monitoring_runs rows.
const benchJobs = 12

// fillForChecks writes the rows with SQL generating them in the database itself, so a
// million rows take seconds, not minutes.
func fillForChecks(app core.App, rows int, now time.Time) error {
	span := int64(90 * 24 * time.Hour / time.Second)
	nowUnix := now.Unix()
	stmts := []string{
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO orders (id, shop, shopify_order_id, order_number, status, currency, total_minor, shopify_created_at, shopify_updated_at, created, updated)
		SELECT printf('o%%014d', i), 'shop', CAST(i AS TEXT), CAST(1000 + i AS TEXT),
		 CASE WHEN i %% 50 = 0 THEN 'cancelled' WHEN i %% 10 = 0 THEN 'pending' ELSE 'paid' END, 'GBP', 2000 + i %% 5000,
		 strftime('%%Y-%%m-%%d %%H:%%M:%%S.000Z', %d - (%d * i / %d), 'unixepoch'),
		 strftime('%%Y-%%m-%%d %%H:%%M:%%S.000Z', %d - (%d * i / %d), 'unixepoch'), '', '' FROM n`,
			rows, nowUnix, span, rows, nowUnix, span, rows),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO webhook_inbox (id, source, topic, shop_domain, webhook_id, payload, status, attempts, received_at, processed_at,
		 processing_ms, next_attempt_at, resource_id, created, updated)
		SELECT printf('w%%014d', i), 'shopify_webhook', 'orders/create', 'shop.myshopify.com', 'wh-' || i, '{}',
		 CASE WHEN i %% 100000 = 1 THEN 'pending' WHEN i %% 20000 = 2 THEN 'failed' WHEN i %% 50000 = 3 THEN 'dead' ELSE 'processed' END,
		 1, strftime('%%Y-%%m-%%d %%H:%%M:%%S.000Z', %d - (%d * i / %d), 'unixepoch'),
		 strftime('%%Y-%%m-%%d %%H:%%M:%%S.000Z', %d - (%d * i / %d) + 1, 'unixepoch'), 3 + i %% 40,
		 strftime('%%Y-%%m-%%d %%H:%%M:%%S.000Z', %d - (%d * i / %d), 'unixepoch'), 'order:' || i, '', '' FROM n`,
			rows, nowUnix, span, rows, nowUnix, span, rows, nowUnix, span, rows),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO monitoring_runs (id, name, kind, outcome, started_at, finished_at, duration_ms, created, updated)
		SELECT printf('m%%014d', i), 'bench-job-' || (i %% %d), 'job', CASE WHEN i %% 97 = 0 THEN 'error' ELSE 'ok' END,
		 strftime('%%Y-%%m-%%d %%H:%%M:%%S.000Z', %d - (%d * i / %d), 'unixepoch'),
		 strftime('%%Y-%%m-%%d %%H:%%M:%%S.000Z', %d - (%d * i / %d), 'unixepoch'), 12, '', '' FROM n`,
			rows, benchJobs, nowUnix, span, rows, nowUnix, span, rows),
		`ANALYZE`,
	}
	for _, q := range stmts {
		if _, err := app.DB().NewQuery(q).Execute(); err != nil {
			return fmt.Errorf("fill the database for the checks: %w", err)
		}
	}
	return nil
}
