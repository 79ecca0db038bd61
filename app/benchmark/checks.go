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
	app, closeApp, err := openMigrated(dir)
	if err != nil {
		return nil, err
	}
	defer closeApp()
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
	shape := historyShape{Shop: "shop", ShopDomain: "shop.myshopify.com", ProblemDeliveries: true}
	err := fillFast(app, []string{"orders", "webhook_inbox", "monitoring_runs"},
		[]string{ordersSQL(rows, now, shape), inboxSQL(rows, now, shape), monitoringRunsSQL(rows, now)}, nil)
	if err != nil {
		return fmt.Errorf("fill the database for the checks: %w", err)
	}
	return nil
}
