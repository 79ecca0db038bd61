package hooks

import (
	"errors"
	"net/http"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/jobs"
)

// outboxJobs are the scheduled jobs of the outbox feature.
func (s *Spine) outboxJobs() []jobs.Job {
	sender := &outbox.Sender{
		App:         s.App,
		SMTP:        s.Config.SMTP,
		Brand:       s.Config.BrandName,
		MaxAttempts: s.Config.EmailMaxAttempts,
		Backoff:     outbox.DefaultBackoff,
		Now:         s.Clock.Now,
	}
	return []jobs.Job{jobs.EmailOutboxSend(sender, s.Config.EmailSendSchedule)}
}

// EnqueueEmail enqueues e with the configured brand name, on the spine's clock; pass
// the txApp of the state change the email belongs to.
func (s *Spine) EnqueueEmail(txApp core.App, e outbox.Email) (id string, created bool, err error) {
	if e.Brand == "" {
		e.Brand = s.Config.BrandName
	}
	return outbox.Enqueue(txApp, s.now(), e)
}

// bindOutboxActions makes the admin UI's edit of an email's state to "pending" the
// replay action: the same function as POST /api/ops/emails/{id}/retry (fresh
// attempts, same Message-ID, an ops event). Bind it before the derived-field guard.
func (s *Spine) bindOutboxActions() {
	s.App.OnRecordUpdateRequest("email_outbox").BindFunc(func(e *core.RecordRequestEvent) error {
		orig := e.Record.Original()
		if e.Record.GetString("state") != outbox.StatePending || orig.GetString("state") == outbox.StatePending {
			return e.Next()
		}
		if !onlyChanged(e, "state") {
			return e.BadRequestError("To replay an email change only its state to pending.", nil)
		}
		previous, err := outbox.Replay(e.App, e.Record.Id, actorOf(e.RequestEvent), s.now())
		switch {
		case errors.Is(err, outbox.ErrNotReplayable):
			return e.BadRequestError("Only a failed or dead email can be replayed; this one is "+previous+".", nil)
		case err != nil:
			return e.InternalServerError("Could not mark the email for replay.", err)
		}
		return s.answerWithFresh(e, "email_outbox")
	})
}

// bindOutboxApi registers the email outbox actions on the /api/ops group.
func (s *Spine) bindOutboxApi(g *router.RouterGroup[*core.RequestEvent]) {
	g.POST("/emails/{id}/retry", s.retryEmail).Bind(requireStaff(RoleAdmin, RoleManager))
}

// retryEmail puts a failed or dead email back to pending; the email-outbox-send job
// sends it within a minute.
func (s *Spine) retryEmail(e *core.RequestEvent) error {
	id := e.Request.PathValue("id")
	previous, err := outbox.Replay(s.App, id, actorOf(e), s.now())
	switch {
	case errors.Is(err, outbox.ErrEmailNotFound):
		return e.NotFoundError("No email with that id in email_outbox.", nil)
	case errors.Is(err, outbox.ErrNotReplayable):
		return e.Error(http.StatusConflict, "Only a failed or dead email can be retried; this one is "+previous+".", nil)
	case err != nil:
		return e.InternalServerError("Could not mark the email for retry.", err)
	}
	return e.JSON(http.StatusOK, map[string]any{
		"id": id, "state": outbox.StatePending, "previous_state": previous,
		"note": "The email-outbox-send job sends it within a minute, with the same Message-ID.",
	})
}
