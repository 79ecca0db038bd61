// Package hooks binds opspine's rules (app/...) to PocketBase: routes, record hooks
// and request auth. Handlers stay thin: read the request, call app/, write the answer.
package hooks

import (
	"slices"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
)

// Staff roles.
const (
	RoleAdmin    = "admin"
	RoleManager  = "manager"
	RoleOperator = "operator"
)

// requireStaff lets through superusers and active staff records with one of roles
// (any role when none are given). Everyone else gets 401 or 403 with a reason.
func requireStaff(roles ...string) *hook.Handler[*core.RequestEvent] {
	return &hook.Handler[*core.RequestEvent]{
		Id: "opspineRequireStaff",
		Func: func(e *core.RequestEvent) error {
			if e.Auth == nil {
				return e.UnauthorizedError("Sign in as staff or as a superuser to use the ops API.", nil)
			}
			if e.Auth.IsSuperuser() {
				return e.Next()
			}
			if e.Auth.Collection().Name != "staff" || !e.Auth.GetBool("active") {
				return e.ForbiddenError("Only active staff can use the ops API.", nil)
			}
			if len(roles) > 0 && !slices.Contains(roles, e.Auth.GetString("role")) {
				return e.ForbiddenError("Your role cannot do this; ask a manager or an admin.", nil)
			}
			return e.Next()
		},
	}
}

// actorOf names who made a request, for ops_events and dead letter resolutions.
func actorOf(e *core.RequestEvent) string {
	if e.Auth == nil {
		return "anonymous"
	}
	if e.Auth.IsSuperuser() {
		return "superuser:" + e.Auth.Id
	}
	return "staff:" + e.Auth.Id
}
