package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// config holds the thresholds staff tune in the admin UI; opspine seeds every
// registered setting with its default at start (app/settings).
func init() {
	m.Register(func(app core.App) error {
		c := core.NewBaseCollection("config")
		c.Fields.Add(
			requiredText("key", "Setting name, e.g. ingest_oldest_pending_critical_minutes"),
			&core.NumberField{Name: "value", Help: "The value opspine uses; the description says the unit"},
			textField("unit", ""),
			longText("description", "What the setting does and its default"),
		)
		c.Fields.Add(timestamps()...)
		c.AddIndex("idx_config_key", true, "key", "")
		readableByStaff(c)
		c.UpdateRule = types.Pointer(staffRule + ` && @request.auth.role = "admin"`)
		return app.Save(c)
	}, dropCollections("config"))
}
