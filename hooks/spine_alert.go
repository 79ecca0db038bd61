package hooks

import "github.com/opspine/opspine/jobs"

// alertJobs are the scheduled jobs of the alert feature.
func (s *Spine) alertJobs() []jobs.Job { return nil }
