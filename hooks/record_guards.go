package hooks

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"
)

// Collections whose records only opspine writes: they come from Shopify or are the
// audit trail. Staff (superusers included, in the admin UI) may read them and edit
// only the fields listed; state changes go through the actions that own them.
var systemWritten = map[string][]string{
	"customers":             nil,
	"orders":                nil,
	"order_items":           nil,
	"refunds":               nil,
	"webhook_inbox":         nil, // status → pending is the reprocess action (bindWebhookInboxActions)
	"dead_letters":          {"resolved"},
	"ops_events":            nil,
	"monitoring_runs":       nil,
	"data_requests":         nil,
	"config":                {"value"},
	"alerts":                nil,       // state open → resolved is the resolve-by-hand action (bindAlertActions)
	"alert_notifications":   nil,       // state → pending is the send-again action
	"email_outbox":          nil,       // state → pending is the replay action (bindOutboxActions)
	"batches":               {"notes"}, // created by the creation action (bindBatchRecordHooks)
	"batch_status_history":  nil,
	"manual_override_audit": nil, // created by the override action (bindLabResultRecordHooks)
	"allocations":           nil,
	"proof_page_events":     nil,
	"lab_mailbox_state":     nil,
}

// Lab results are created by staff (the release rule runs on creation) and never
// edited: a correction is a new result or a manual override.
var labResultFields = []string{"batch", "lab", "report_pdf", "salmonella", "listeria", "enterobacteriaceae_tested",
	"enterobacteriaceae_cfu_per_g", "other_tests", "outcome", "source", "confidence", "pdf_sha256", "reported_at",
	"entered_by", "outcome_reason"}

// Fields of staff-managed collections that opspine derives.
var derivedFields = map[string][]string{
	"shops":       {"uninstalled_at", "redacted_at"},
	"lab_results": labResultFields,
}

// Collections whose records are never deleted by hand: losing them loses messages or history.
var undeletable = []string{"webhook_inbox", "ops_events", "monitoring_runs", "orders", "dead_letters", "alerts",
	"alert_notifications", "email_outbox", "batches", "lab_results", "batch_status_history", "manual_override_audit", "allocations"}

// bindDerivedFieldGuards rejects hand edits of derived data with a message that says
// what to do instead.
func bindDerivedFieldGuards(app core.App) {
	app.OnRecordCreateRequest().BindFunc(func(e *core.RecordRequestEvent) error {
		if _, ok := systemWritten[e.Collection.Name]; ok {
			return e.BadRequestError(fmt.Sprintf("%s records are written by opspine (from Shopify or its jobs), not by hand.", e.Collection.Name), nil)
		}
		return e.Next()
	})
	app.OnRecordUpdateRequest().BindFunc(func(e *core.RecordRequestEvent) error {
		name := e.Collection.Name
		editable, system := systemWritten[name]
		derived := derivedFields[name]
		if !system && derived == nil {
			return e.Next()
		}
		for _, f := range e.Collection.Fields {
			fname := f.GetName()
			if fname == "updated" || fname == "id" {
				continue
			}
			locked := slices.Contains(derived, fname) || (system && !slices.Contains(editable, fname))
			if locked && !sameValue(e.Record.Original().Get(fname), e.Record.Get(fname)) {
				return e.BadRequestError(fmt.Sprintf("%s.%s is derived by opspine and cannot be edited by hand; %s",
					name, fname, whatToDoInstead(name)), nil)
			}
		}
		return e.Next()
	})
	// PocketBase's default users collection is open for sign-up (create rule ""); opspine
	// has no customer accounts, so an anonymous client must not be able to make one.
	app.OnRecordCreateRequest("users").BindFunc(func(e *core.RecordRequestEvent) error {
		if !e.HasSuperuserAuth() {
			return e.ForbiddenError("opspine has no public sign-up; staff accounts are made by an admin in the staff collection.", nil)
		}
		return e.Next()
	})
	app.OnRecordDeleteRequest().BindFunc(func(e *core.RecordRequestEvent) error {
		if slices.Contains(undeletable, e.Collection.Name) {
			return e.BadRequestError(fmt.Sprintf("%s records are kept: deleting one would lose a message or its history.", e.Collection.Name), nil)
		}
		return e.Next()
	})
	app.OnRecordUpdateRequest("dead_letters").BindFunc(func(e *core.RecordRequestEvent) error {
		if e.Record.GetBool("resolved") && !e.Record.Original().GetBool("resolved") {
			e.Record.Set("resolved_at", types.NowDateTime())
			e.Record.Set("resolved_by", actorOf(e.RequestEvent))
		}
		return e.Next()
	})
}

func whatToDoInstead(collection string) string {
	switch collection {
	case "webhook_inbox":
		return "to process a delivery again set its status to pending, or POST /api/ops/webhooks/{id}/reprocess."
	case "orders", "order_items", "refunds", "customers":
		return "it comes from Shopify: change it there, or add the missing product and reprocess the delivery."
	case "dead_letters":
		return "only resolved can be set; reprocess the delivery to replay it."
	case "alerts":
		return "to close an alert by hand set its state to resolved; the check reopens it if the condition persists."
	case "batches":
		return "only notes can be edited; status changes come from lab results (POST /api/ops/batches/{id}/lab-results), a manual override or a recall."
	case "lab_results":
		return "a lab result is kept as entered; enter a new result or use a manual override."
	case "email_outbox":
		return "to send a failed or dead email again set its state to pending, or POST /api/ops/emails/{id}/retry."
	case "alert_notifications":
		return "to send a failed or dead message again set its state to pending."
	default:
		return "it is kept as opspine wrote it."
	}
}

// sameValue compares field values the way a person would: JSON by meaning, not spacing.
func sameValue(a, b any) bool {
	if ja, ok := a.(types.JSONRaw); ok {
		if jb, ok := b.(types.JSONRaw); ok {
			var va, vb any
			errA, errB := json.Unmarshal(orNull(ja), &va), json.Unmarshal(orNull(jb), &vb)
			return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
		}
	}
	if reflect.DeepEqual(a, b) {
		return true
	}
	return strings.TrimSpace(fmt.Sprint(a)) == strings.TrimSpace(fmt.Sprint(b))
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

// bindShopSecretGuard makes webhook secrets write-only: never returned by any API (not
// even to superusers), and an empty value on update keeps the current secrets, so
// saving a shop in the admin UI without retyping them changes nothing.
func bindShopSecretGuard(app core.App) {
	app.OnRecordEnrich("shops").BindFunc(func(e *core.RecordEnrichEvent) error {
		// after Next: PocketBase unhides every field for superusers at the end of the chain
		if err := e.Next(); err != nil {
			return err
		}
		e.Record.Hide("webhook_secrets")
		return nil
	})
	app.OnRecordUpdateRequest("shops").BindFunc(func(e *core.RecordRequestEvent) error {
		if strings.TrimSpace(e.Record.GetString("webhook_secrets")) == "" {
			e.Record.Set("webhook_secrets", e.Record.Original().GetString("webhook_secrets"))
		}
		return e.Next()
	})
}
