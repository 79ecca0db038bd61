// Package pb_migrations creates and changes opspine's PocketBase collections.
// Each file is <unix time>_<what changes>.go and registers one up/down pair.
package pb_migrations

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"
)

// These small constructors keep the collection definitions readable: one line a field,
// with the help text staff see beside the field in the admin UI.

func textField(name, help string) *core.TextField {
	return &core.TextField{Name: name, Help: help, Max: 2000}
}

func requiredText(name, help string) *core.TextField {
	return &core.TextField{Name: name, Help: help, Max: 2000, Required: true}
}

// longText holds raw payloads and error texts; PocketBase's default cap is 5000 characters.
func longText(name, help string) *core.TextField {
	return &core.TextField{Name: name, Help: help, Max: 16 << 20}
}

func intField(name, help string) *core.NumberField {
	return &core.NumberField{Name: name, Help: help, OnlyInt: true}
}

func nonNegativeInt(name, help string) *core.NumberField {
	return &core.NumberField{Name: name, Help: help, OnlyInt: true, Min: types.Pointer(0.0)}
}

func boolField(name, help string) *core.BoolField {
	return &core.BoolField{Name: name, Help: help}
}

func dateField(name, help string) *core.DateField {
	return &core.DateField{Name: name, Help: help}
}

func jsonField(name, help string) *core.JSONField {
	return &core.JSONField{Name: name, Help: help, MaxSize: 16 << 20}
}

func selectField(name, help string, values ...string) *core.SelectField {
	return &core.SelectField{Name: name, Help: help, Values: values, MaxSelect: 1, Required: true}
}

func relationField(name, help string, target *core.Collection) *core.RelationField {
	return &core.RelationField{Name: name, Help: help, CollectionId: target.Id, MaxSelect: 1}
}

func timestamps() []core.Field {
	return []core.Field{
		&core.AutodateField{Name: "created", OnCreate: true},
		&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
	}
}

// staffRule lets active staff records read a collection through the API; superusers
// always can. Writes stay superuser-only unless a collection says otherwise.
const staffRule = `@request.auth.collectionName = "staff" && @request.auth.active = true`

func readableByStaff(c *core.Collection) {
	c.ListRule = types.Pointer(staffRule)
	c.ViewRule = types.Pointer(staffRule)
}
