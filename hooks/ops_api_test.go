package hooks_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/opspine/opspine/app/testkit"
)

func TestOpsApiNeedsStaffAndManagersRunJobs(t *testing.T) {
	s := start(t, nil)
	operator := testkit.Token(t, s.App, "operator")
	manager := testkit.Token(t, s.App, "manager")
	superuser := testkit.Token(t, s.App, "superuser")
	cases := []struct {
		name, method, path, token string
		want                      int
	}{
		{"anonymous list", "GET", "/api/ops/jobs", "", 401},
		{"operator list", "GET", "/api/ops/jobs", operator, 200},
		{"operator run", "POST", "/api/ops/jobs/webhook-retry/run", operator, 403},
		{"manager run", "POST", "/api/ops/jobs/webhook-retry/run", manager, 200},
		{"superuser run", "POST", "/api/ops/jobs/webhook-retry/run", superuser, 200},
		{"unknown job", "POST", "/api/ops/jobs/no-such-job/run", manager, 404},
		{"anonymous reprocess", "POST", "/api/ops/webhooks/x/reprocess", "", 401},
		{"unknown delivery", "POST", "/api/ops/webhooks/x/reprocess", operator, 404},
	}
	for _, c := range cases {
		if code, body := s.Call(t, c.method, c.path, c.token, ""); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
	if n := testkit.Count(t, s.App, "monitoring_runs", "name = 'webhook-retry' AND outcome = 'ok' AND trigger LIKE 'manual:%'", nil); n != 2 {
		t.Errorf("%d manual runs recorded, want 2", n)
	}
	code, body := s.Call(t, "GET", "/api/ops/jobs", operator, "")
	if code != 200 {
		t.Fatal(code)
	}
	var list struct {
		Jobs []struct {
			Name     string `json:"name"`
			Schedule string `json:"schedule"`
			NextRun  string `json:"next_run"`
			LastRun  *struct {
				Outcome string `json:"outcome"`
				Trigger string `json:"trigger"`
			} `json:"last_run"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, j := range list.Jobs {
		if j.Name == "webhook-retry" {
			found = true
			if j.Schedule == "" || j.NextRun == "" || j.LastRun == nil || j.LastRun.Outcome != "ok" {
				t.Errorf("webhook-retry listed as %s", body)
			}
		}
	}
	if !found {
		t.Errorf("webhook-retry not listed: %s", body)
	}
}

func TestInactiveStaffCannotSignIn(t *testing.T) {
	s := start(t, nil)
	col, _ := s.App.FindCollectionByNameOrId("staff")
	rec := newRecord(col, map[string]any{"name": "Gone", "role": "admin", "active": false})
	rec.SetEmail("gone@example.com")
	rec.SetPassword("correct horse battery staple")
	if err := s.App.Save(rec); err != nil {
		t.Fatal(err)
	}
	code, _ := s.Call(t, "POST", "/api/collections/staff/auth-with-password", "",
		`{"identity":"gone@example.com","password":"correct horse battery staple"}`)
	if code == 200 {
		t.Fatalf("inactive staff signed in")
	}
}

// The admin UI writes through the records API: derived fields are refused with a
// message that says what to do, and a delivery's status set to pending reprocesses it.
func TestAdminUIEditsOfDerivedDataAreRefusedAndInboxStatusPendingReprocesses(t *testing.T) {
	s := start(t, nil)
	superuser := testkit.Token(t, s.App, "superuser")
	s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON()})
	s.WaitSettled(t)
	o := loadOrder(t, s, orderID)

	code, body := s.Call(t, "PATCH", "/api/collections/orders/records/"+o.ID, superuser, `{"status":"paid"}`)
	if code != 400 || !strings.Contains(string(body), "derived") {
		t.Errorf("hand edit of order status: %d %s, want 400 saying it is derived", code, body)
	}
	code, body = s.Call(t, "PATCH", "/api/collections/orders/records/"+o.ID, superuser, `{"total_minor":1}`)
	if code != 400 {
		t.Errorf("hand edit of order total: %d %s, want 400", code, body)
	}
	if code, _ = s.Call(t, "POST", "/api/collections/orders/records", superuser, `{"currency":"GBP","status":"paid"}`); code != 400 {
		t.Errorf("hand-made order: %d, want 400", code)
	}
	if got := loadOrder(t, s, orderID); got != o {
		t.Errorf("order changed by refused edits: %+v", got)
	}

	// add the missing product, then reprocess the delivery from the admin UI
	addProduct(t, s, "PR-WINGS-1KG")
	addProduct(t, s, "PR-BEEF-2KG")
	var inboxID string
	s.App.DB().NewQuery(`SELECT id FROM webhook_inbox`).Row(&inboxID)
	if code, body = s.Call(t, "PATCH", "/api/collections/webhook_inbox/records/"+inboxID, superuser, `{"status":"failed"}`); code != 400 {
		t.Errorf("inbox status to failed by hand: %d %s, want 400", code, body)
	}
	if code, body = s.Call(t, "PATCH", "/api/collections/webhook_inbox/records/"+inboxID, superuser, `{"status":"pending"}`); code != 200 {
		t.Fatalf("inbox status to pending: %d %s", code, body)
	}
	s.WaitSettled(t)
	if got := loadOrder(t, s, orderID); got.HasUnknownSKU {
		t.Errorf("reprocessed order still flags unknown SKUs")
	}
	if code, _ = s.Call(t, "DELETE", "/api/collections/webhook_inbox/records/"+inboxID, superuser, ""); code != 400 {
		t.Errorf("deleting an inbox row: %d, want 400", code)
	}
}

func TestWebhookSecretsAreNeverReturnedAndKeptWhenLeftEmpty(t *testing.T) {
	s := start(t, nil)
	superuser := testkit.Token(t, s.App, "superuser")
	code, body := s.Call(t, "GET", "/api/collections/shops/records", superuser, "")
	if code != 200 || strings.Contains(string(body), testkit.Secret) || strings.Contains(string(body), "webhook_secrets") {
		t.Fatalf("shops list leaks the secret: %d %s", code, body)
	}
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	json.Unmarshal(body, &list)
	if len(list.Items) != 1 {
		t.Fatalf("want the configured shop, got %s", body)
	}
	code, body = s.Call(t, "PATCH", "/api/collections/shops/records/"+list.Items[0].ID, superuser, `{"name":"Protocol Raw","webhook_secrets":""}`)
	if code != 200 || strings.Contains(string(body), testkit.Secret) {
		t.Fatalf("update shop: %d %s", code, body)
	}
	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON()}); code != 200 {
		t.Fatalf("the secret was lost by saving the shop without it: %d", code)
	}
	if code, body = s.Call(t, "PATCH", "/api/collections/shops/records/"+list.Items[0].ID, superuser, `{"redacted_at":"2026-01-01 00:00:00.000Z"}`); code != 400 {
		t.Errorf("hand edit of shops.redacted_at: %d %s, want 400", code, body)
	}
	staff := testkit.Token(t, s.App, "operator")
	if code, body = s.Call(t, "GET", "/api/collections/webhook_inbox/records", "", ""); code != 200 || strings.Contains(string(body), "protocol-raw") {
		t.Errorf("anonymous sees the inbox: %d %s", code, body)
	}
	if code, body = s.Call(t, "GET", "/api/collections/webhook_inbox/records", staff, ""); code != 200 || !strings.Contains(string(body), `"totalItems":1`) {
		t.Errorf("staff cannot see the queue: %d %s", code, body)
	}
	_ = http.StatusOK
}
