package hooks

import (
	"net/http"

	"github.com/pocketbase/pocketbase/core"
)

// A record action is an admin UI edit that stands for an action: a delivery's status
// set to pending reprocesses it, an alert's state set to resolved resolves it. The
// action runs the same app/ function as the API route and answers with the record.

// onlyChanged reports whether field is the only field the request changed.
func onlyChanged(e *core.RecordRequestEvent, field string) bool {
	orig := e.Record.Original()
	for _, f := range e.Collection.Fields {
		n := f.GetName()
		if n != field && n != "updated" && !sameValue(orig.Get(n), e.Record.Get(n)) {
			return false
		}
	}
	return true
}

// answerWithFresh answers a record action with the record as the action left it.
func (s *Spine) answerWithFresh(e *core.RecordRequestEvent, collection string) error {
	fresh, err := e.App.FindRecordById(collection, e.Record.Id)
	if err != nil {
		return e.InternalServerError("Done, but the record could not be read back.", err)
	}
	return e.JSON(http.StatusOK, fresh)
}
