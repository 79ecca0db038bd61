package hooks

import "github.com/opspine/opspine/jobs"

// outboxJobs are the scheduled jobs of the outbox feature.
func (s *Spine) outboxJobs() []jobs.Job { return nil }
