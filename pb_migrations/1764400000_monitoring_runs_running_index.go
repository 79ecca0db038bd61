package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// At every start opspine closes the runs a stopped process left running
// (monitor.CloseAbandonedRuns); this partial index holds only those rows, so the
// start does not scan a table that gains a row per job run.
func init() {
	m.Register(func(app core.App) error {
		return setRunningRunsIndex(app, true)
	}, func(app core.App) error {
		return setRunningRunsIndex(app, false)
	})
}

func setRunningRunsIndex(app core.App, add bool) error {
	c, err := app.FindCollectionByNameOrId("monitoring_runs")
	if err != nil {
		return err
	}
	if add {
		c.AddIndex("idx_monitoring_runs_running", false, "outcome", "outcome = 'running'")
	} else {
		c.RemoveIndex("idx_monitoring_runs_running")
	}
	return app.Save(c)
}
