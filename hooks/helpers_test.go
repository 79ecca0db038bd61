package hooks_test

import "github.com/pocketbase/pocketbase/core"

func newRecord(col *core.Collection, fields map[string]any) *core.Record {
	rec := core.NewRecord(col)
	for k, v := range fields {
		rec.Set(k, v)
	}
	return rec
}
