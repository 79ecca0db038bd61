package hooks

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/opspine/opspine/jobs"
)

// labEmailJobs are the scheduled jobs of lab email ingestion.
func (s *Spine) labEmailJobs() []jobs.Job { return nil }

// bindLabEmailApi registers the lab email routes.
func (s *Spine) bindLabEmailApi(g *router.RouterGroup[*core.RequestEvent]) {}
