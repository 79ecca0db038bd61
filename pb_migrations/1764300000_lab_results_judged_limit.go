package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// A lab result keeps the Enterobacteriaceae limit the release rule judged it against,
// so the proof page shows that limit (and that verdict) even after the limit in
// `config` changes. Results judged before this migration have 0 there and are shown
// against the limit in `config`, as before.
func init() {
	m.Register(func(app core.App) error {
		c, err := app.FindCollectionByNameOrId("lab_results")
		if err != nil {
			return err
		}
		c.Fields.Add(&core.NumberField{Name: "enterobacteriaceae_limit_cfu_per_g", Min: types.Pointer(0.0),
			Help: "The Enterobacteriaceae limit (cfu/g) the release rule applied to this result; 0 when judged before it was kept"})
		return app.Save(c)
	}, func(app core.App) error {
		c, err := app.FindCollectionByNameOrId("lab_results")
		if err != nil {
			return err
		}
		c.Fields.RemoveByName("enterobacteriaceae_limit_cfu_per_g")
		return app.Save(c)
	})
}
