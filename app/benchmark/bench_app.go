package benchmark

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"

	_ "github.com/opspine/opspine/pb_migrations" // every collection opspine serves
)

// openMigrated opens the data dir dataDir in this process, creating and migrating it
// as `serve` would, for a measurement or for seeding a child's data dir. close ends the
// app as PocketBase's terminate does (its data dir watcher included, which would
// otherwise go on watching a dir a child then writes) and closes the database.
func openMigrated(dataDir string) (app core.App, close func(), err error) {
	base := core.NewBaseApp(core.BaseAppConfig{DataDir: dataDir})
	if err := base.Bootstrap(); err != nil {
		return nil, nil, fmt.Errorf("bootstrap %s: %w", dataDir, err)
	}
	close = func() {
		base.OnTerminate().Trigger(&core.TerminateEvent{App: base}, func(e *core.TerminateEvent) error {
			return e.App.ResetBootstrapState()
		})
	}
	if err := base.RunAllMigrations(); err != nil {
		close()
		return nil, nil, fmt.Errorf("migrate %s: %w", dataDir, err)
	}
	return base, close, nil
}
