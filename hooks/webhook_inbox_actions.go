package hooks

import (
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/ingest"
)

// bindWebhookInboxActions makes the admin UI's edit of a delivery's status to
// "pending" the reprocess action: the same function as POST /api/ops/webhooks/{id}/reprocess
// (fresh attempts, dead letters resolved, an ops event), then the pipeline takes it.
// Bind registers it before the derived-field guard, which rejects every other edit.
func (s *Spine) bindWebhookInboxActions() {
	s.App.OnRecordUpdateRequest("webhook_inbox").BindFunc(func(e *core.RecordRequestEvent) error {
		orig := e.Record.Original()
		if e.Record.GetString("status") != ingest.StatusPending || orig.GetString("status") == ingest.StatusPending {
			return e.Next()
		}
		if !onlyChanged(e, "status") {
			return e.BadRequestError("To reprocess a delivery change only its status to pending.", nil)
		}
		if err := ingest.RequestReprocess(e.App, e.Record.Id, actorOf(e.RequestEvent), s.now()); err != nil {
			return e.InternalServerError("Could not mark the delivery for reprocessing.", err)
		}
		s.Pipeline.Enqueue(e.Record.Id)
		return s.answerWithFresh(e, "webhook_inbox")
	})
}
