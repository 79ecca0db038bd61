package batches

import "github.com/pocketbase/pocketbase/core"

// WithBeforeInsert returns d calling f inside the creating transaction just before the
// batch row is written, with the code it is about to take.
func WithBeforeInsert(d Deps, f func(txApp core.App, code string)) Deps {
	d.beforeInsert = f
	return d
}
