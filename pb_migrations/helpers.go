package pb_migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
)

func strPtr(s string) *string { return &s }

func saveAll(app core.App, collections ...*core.Collection) error {
	for _, c := range collections {
		if err := app.Save(c); err != nil {
			return fmt.Errorf("create collection %s: %w", c.Name, err)
		}
	}
	return nil
}

// dropCollections is the down step of a migration that created these collections,
// listed so that a collection goes before the ones it points to.
func dropCollections(names ...string) func(core.App) error {
	return func(app core.App) error {
		for _, name := range names {
			c, err := app.FindCollectionByNameOrId(name)
			if err != nil {
				continue
			}
			if err := app.Delete(c); err != nil {
				return fmt.Errorf("drop collection %s: %w", name, err)
			}
		}
		return nil
	}
}
