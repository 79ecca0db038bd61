// Command opspine is the operations backend of a small Shopify brand: one executable
// with the database, staff auth, admin UI, webhook receivers, scheduled jobs and pages.
// It keeps PocketBase's own commands (serve, superuser, migrate).
package main

import (
	"log"
	"os"
	"runtime/debug"
	_ "time/tzdata" // business time zones work on a box without the tz database (a minimal Pi image)

	"github.com/jonboulle/clockwork"
	"github.com/pocketbase/pocketbase"

	"github.com/opspine/opspine/app/benchmark"
	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/sqlstore"
	"github.com/opspine/opspine/hooks"
	_ "github.com/opspine/opspine/pb_migrations"
)

// defaultMemoryLimit is the Go heap's soft limit when GOMEMLIMIT is not set: under a
// burst of webhooks the heap peaked near 70 MB with the default GC pacing, and resident
// memory must stay well under a small box's RAM. Above it the GC works harder (at most
// half the CPU); set GOMEMLIMIT higher on a bigger box.
const defaultMemoryLimit = 64 << 20

func main() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	app := pocketbase.NewWithConfig(pocketbase.Config{DefaultDataDir: "./pb_data", DBConnect: sqlstore.Connect})
	if _, err := hooks.Bind(app, cfg, clockwork.NewRealClock()); err != nil {
		log.Fatal(err)
	}
	app.RootCmd.AddCommand(benchmark.NewCommand())
	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}
