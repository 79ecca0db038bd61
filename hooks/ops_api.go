package hooks

import (
	"errors"
	"net/http"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/jobs"
)

// bindOpsApi registers /api/ops/...: every route needs staff or a superuser; actions
// with wider effect need a manager or an admin.
func (s *Spine) bindOpsApi(se *core.ServeEvent) {
	g := se.Router.Group("/api/ops")
	g.Bind(requireStaff())
	managers := requireStaff(RoleAdmin, RoleManager)

	g.GET("/health", s.health)
	g.GET("/jobs", s.listJobs)
	g.POST("/jobs/{name}/run", s.runJob).Bind(managers)

	g.POST("/webhooks/reprocess", s.reprocessWebhooksSince).Bind(managers)
	g.POST("/webhooks/{id}/reprocess", s.reprocessWebhook)

	s.bindOutboxApi(g)
	s.bindBatchesApi(g)
	s.bindLabResultsApi(g)
	s.bindLabEmailApi(g)
	s.bindInventoryApi(g)

	g.GET("/customers/{id}/export", s.exportCustomer).Bind(managers)
	g.POST("/data-requests/{id}/export", s.exportDataRequest).Bind(managers)
}

func (s *Spine) listJobs(e *core.RequestEvent) error {
	list, err := s.Scheduler.List()
	if err != nil {
		return e.InternalServerError("Could not read the job runs.", err)
	}
	return e.JSON(http.StatusOK, map[string]any{"jobs": list})
}

func (s *Spine) runJob(e *core.RequestEvent) error {
	run, err := s.Scheduler.RunNow(e.Request.PathValue("name"), "manual:"+actorOf(e))
	switch {
	case errors.Is(err, jobs.ErrUnknownJob):
		return e.NotFoundError("No job with that name; GET /api/ops/jobs lists them.", nil)
	case errors.Is(err, jobs.ErrJobRunning):
		return e.Error(http.StatusConflict, "The job is running now; wait for it to finish.", nil)
	case err != nil:
		return e.InternalServerError("Could not run the job.", err)
	}
	return e.JSON(http.StatusOK, run)
}

// reprocessWebhook puts one delivery back to pending and processes it now; the answer
// says how that went.
func (s *Spine) reprocessWebhook(e *core.RequestEvent) error {
	id := e.Request.PathValue("id")
	err := ingest.RequestReprocess(s.App, id, actorOf(e), s.now())
	if errors.Is(err, ingest.ErrDeliveryNotFound) {
		return e.NotFoundError("No delivery with that id in webhook_inbox.", nil)
	}
	if err != nil {
		return e.InternalServerError("Could not mark the delivery for reprocessing.", err)
	}
	res, err := s.Processor.Process(id)
	if err != nil {
		return e.InternalServerError("The delivery is pending again but processing it failed; the retry job will try again.", err)
	}
	return e.JSON(http.StatusOK, res)
}

// reprocessWebhooksSince puts every failed and dead delivery received since a time back
// to pending and hands them to the pipeline. Body: {"since": RFC 3339 time}.
func (s *Spine) reprocessWebhooksSince(e *core.RequestEvent) error {
	var body struct {
		Since string `json:"since"`
	}
	if err := e.BindBody(&body); err != nil || body.Since == "" {
		return e.BadRequestError(`Send {"since": "2026-11-20T00:00:00Z"}: the time from which failed and dead deliveries are reprocessed.`, nil)
	}
	since, err := time.Parse(time.RFC3339, body.Since)
	if err != nil {
		return e.BadRequestError(`"since" must be an RFC 3339 time such as 2026-11-20T00:00:00Z.`, nil)
	}
	const limit = 10000
	ids, err := ingest.RequestReprocessSince(s.App, since, actorOf(e), s.now(), limit)
	if err != nil {
		return e.InternalServerError("Could not mark deliveries for reprocessing.", err)
	}
	queued := 0
	for _, id := range ids {
		if s.Pipeline.Enqueue(id) {
			queued++
		}
	}
	return e.JSON(http.StatusAccepted, map[string]any{
		"marked": len(ids), "queued_now": queued, "more_remain": len(ids) == limit,
		"note": "Deliveries not queued now are taken by the webhook-retry job within a minute.",
	})
}
