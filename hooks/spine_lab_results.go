package hooks

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
)

// bindLabResultsApi registers the lab result, override and recall routes.
func (s *Spine) bindLabResultsApi(g *router.RouterGroup[*core.RequestEvent]) {}

// bindLabResultRecordHooks makes a lab result created in the admin UI apply the release rule.
func (s *Spine) bindLabResultRecordHooks() {}
