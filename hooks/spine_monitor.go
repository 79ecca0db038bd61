package hooks

import "github.com/opspine/opspine/jobs"

// monitorJobs are the scheduled jobs of the monitor feature.
func (s *Spine) monitorJobs() []jobs.Job { return nil }
