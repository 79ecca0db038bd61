package hooks

import (
	"net/http"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/monitor"
)

// checkHealth is one check as GET /api/ops/health shows it.
type checkHealth struct {
	Check   string       `json:"check"`
	Status  string       `json:"status"` // ok | warning | critical | error | timeout | never_ran
	LastRun *monitor.Run `json:"last_run"`
}

// health answers every check's last status and figures, the open alerts, and the
// worst status overall. GET /api/health stays PocketBase's public liveness probe.
func (s *Spine) health(e *core.RequestEvent) error {
	overall := monitor.StatusOK
	var checks []checkHealth
	for _, c := range monitor.Checks() {
		run, ok, err := monitor.LastRun(s.App.DB(), monitor.JobName(c.Name))
		if err != nil {
			return e.InternalServerError("Could not read the monitoring runs.", err)
		}
		h := checkHealth{Check: c.Name, Status: "never_ran"}
		if ok {
			h.Status, h.LastRun = run.Outcome, &run
			switch run.Outcome {
			case monitor.OutcomeWarning:
				overall = monitor.Worse(overall, monitor.StatusWarning)
			case monitor.OutcomeCritical, monitor.OutcomeError, monitor.OutcomeTimeout:
				overall = monitor.StatusCritical
			}
		}
		checks = append(checks, h)
	}
	open, err := alerts.OpenAlerts(s.App.DB())
	if err != nil {
		return e.InternalServerError("Could not read the open alerts.", err)
	}
	return e.JSON(http.StatusOK, map[string]any{"status": overall, "checks": checks, "open_alerts": open})
}
