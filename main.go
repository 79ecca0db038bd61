// Command opspine is the operations backend of a small Shopify brand: one executable
// with the database, staff auth, admin UI, webhook receivers, scheduled jobs and pages.
// It keeps PocketBase's own commands (serve, superuser, migrate).
package main

import (
	"log"
	"os"
	_ "time/tzdata" // business time zones work on a box without the tz database (a minimal Pi image)

	"github.com/jonboulle/clockwork"
	"github.com/pocketbase/pocketbase"

	"github.com/opspine/opspine/app/benchmark"
	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/hooks"
	_ "github.com/opspine/opspine/pb_migrations"
)

func main() {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	app := pocketbase.NewWithConfig(pocketbase.Config{DefaultDataDir: "./pb_data"})
	if _, err := hooks.Bind(app, cfg, clockwork.NewRealClock()); err != nil {
		log.Fatal(err)
	}
	app.RootCmd.AddCommand(benchmark.NewCommand())
	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}
