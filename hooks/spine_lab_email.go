package hooks

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/opspine/opspine/app/labmail"
	"github.com/opspine/opspine/jobs"
)

// labEmailJobs are the scheduled jobs of lab email ingestion: lab-email-poll when
// OPSPINE_LAB_IMAP_ADDR is set. It also binds the lab email record hooks, as Bind calls
// it once.
func (s *Spine) labEmailJobs() []jobs.Job {
	s.bindLabPatternGuard()
	s.bindLabEmailGuard()
	c := s.Config.LabIMAP
	if c.Addr == "" {
		return nil
	}
	return []jobs.Job{jobs.LabEmailPoll(s.LabEmailPoller(), c.Interval)}
}

// LabEmailPoller is the poller of the configured lab mailbox.
func (s *Spine) LabEmailPoller() *labmail.Poller {
	c := s.Config.LabIMAP
	return &labmail.Poller{
		App: s.App, Now: s.Clock.Now, Logger: s.App.Logger(),
		IMAP: labmail.IMAP{Addr: c.Addr, Username: c.Username, Password: c.Password, TLS: c.TLS,
			Mailbox: c.Mailbox, ProcessedMailbox: c.ProcessedMailbox},
	}
}

// bindLabPatternGuard refuses a lab_pdf_patterns row whose regular expressions do not
// compile, from the admin UI or the API, with the field and the error.
func (s *Spine) bindLabPatternGuard() {
	s.App.OnRecordValidate(labmail.CollectionPatterns).BindFunc(func(e *core.RecordEvent) error {
		if err := labmail.CheckPattern(labmail.PatternOf(e.Record)); err != nil {
			return validation.Errors{"lab_name": validation.NewError("validation_lab_pattern", "The pattern cannot be used: "+err.Error())}
		}
		return e.Next()
	})
}

// labEmailsByJobOnly is the refusal of a hand edit of lab_emails.
const labEmailsByJobOnly = "lab_emails are written by the lab-email-poll job. To read an email again after fixing its lab's pattern use " +
	"POST /api/ops/lab-emails/{id}/reprocess; to record it against a batch use POST /api/ops/lab-emails/{id}/attach with {\"batch_id\": \"...\"}."

// bindLabEmailGuard keeps lab_emails as the mailbox delivered them: staff (superusers
// included) act on them through reprocess and attach, not by editing state or links.
func (s *Spine) bindLabEmailGuard() {
	s.App.OnRecordCreateRequest(labmail.CollectionEmails).BindFunc(func(e *core.RecordRequestEvent) error {
		return e.BadRequestError(labEmailsByJobOnly, nil)
	})
	s.App.OnRecordUpdateRequest(labmail.CollectionEmails).BindFunc(func(e *core.RecordRequestEvent) error {
		return e.BadRequestError(labEmailsByJobOnly, nil)
	})
}

// bindLabEmailApi registers the lab email routes: reprocess after fixing a pattern, and
// attach to a batch by hand.
func (s *Spine) bindLabEmailApi(g *router.RouterGroup[*core.RequestEvent]) {
	g.POST("/lab-emails/{id}/reprocess", s.reprocessLabEmail)
	g.POST("/lab-emails/{id}/attach", s.attachLabEmail)
}

// reprocessLabEmail reads a stored lab email again with the current patterns.
func (s *Spine) reprocessLabEmail(e *core.RequestEvent) error {
	out, err := labmail.ProcessEmail(s.App, e.Request.PathValue("id"), labmail.Options{Actor: actorOf(e), Now: s.now(), Again: true})
	return answerLabEmail(e, out, err)
}

type attachLabEmailBody struct {
	BatchID string `json:"batch_id"`
}

// attachLabEmail records a lab email's parsed findings against the batch staff name.
func (s *Spine) attachLabEmail(e *core.RequestEvent) error {
	var body attachLabEmailBody
	dec := json.NewDecoder(http.MaxBytesReader(e.Response, e.Request.Body, 4<<10))
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		return e.BadRequestError(`Send JSON such as {"batch_id": "<id of the batch>"}.`, nil)
	}
	if strings.TrimSpace(body.BatchID) == "" {
		return e.BadRequestError(`batch_id is required: send {"batch_id": "<id of the batch>"}.`, nil)
	}
	out, err := labmail.ProcessEmail(s.App, e.Request.PathValue("id"), labmail.Options{Actor: actorOf(e), Now: s.now(), BatchID: strings.TrimSpace(body.BatchID)})
	return answerLabEmail(e, out, err)
}

func answerLabEmail(e *core.RequestEvent, out labmail.Outcome, err error) error {
	switch {
	case errors.Is(err, labmail.ErrNoSuchEmail):
		return e.NotFoundError("No lab email with that id in lab_emails.", nil)
	case errors.Is(err, labmail.ErrCannotAttach):
		return e.Error(http.StatusUnprocessableEntity, strings.TrimPrefix(err.Error(), labmail.ErrCannotAttach.Error()+": ")+".", nil)
	case err != nil:
		return e.InternalServerError("Could not process the lab email; it is kept and can be tried again.", err)
	}
	return e.JSON(http.StatusOK, out)
}
