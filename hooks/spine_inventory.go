package hooks

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"

	"github.com/opspine/opspine/jobs"
)

// inventoryJobs are the scheduled jobs of inventory and allocation.
func (s *Spine) inventoryJobs() []jobs.Job { return nil }

// bindInventoryApi registers the inventory routes.
func (s *Spine) bindInventoryApi(g *router.RouterGroup[*core.RequestEvent]) {}

// bindInventoryHooks binds allocation to order and batch changes.
func (s *Spine) bindInventoryHooks() {}
