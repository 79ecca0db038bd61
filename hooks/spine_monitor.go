package hooks

import (
	"time"

	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/jobs"
)

// monitorJobs are a job per registered check (monitor-<check>) and the daily snapshot.
func (s *Spine) monitorJobs() []jobs.Job {
	list := []jobs.Job{jobs.DailySnapshot(s.App, s.Config.Timezone, s.Clock.Now)}
	for _, c := range monitor.Checks() {
		list = append(list, jobs.MonitorCheck(c, s.checkEnv, s.Clock.Now))
	}
	return list
}

// checkEnv is what a check sees: the database, the time, its previous run and the jobs.
func (s *Spine) checkEnv(check string, now time.Time) (monitor.Env, error) {
	prev, _, err := monitor.PreviousRunStart(s.App.DB(), monitor.JobName(check), now)
	if err != nil {
		return monitor.Env{}, err
	}
	return monitor.Env{
		DB: s.App.DB(), Now: now, PreviousRun: prev, Started: s.started, Jobs: s.Scheduler.Health,
		SlackConfigured: s.Config.SlackAlertsURL != "" || s.Config.SlackUrgentURL != "" || s.Config.SlackDigestURL != "",
	}, nil
}
