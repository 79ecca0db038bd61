package hooks_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/testkit"
	"github.com/opspine/opspine/hooks"
)

// rulesSecrets are secrets configured the way an operator would (environment), each
// distinct so a leak names itself.
var rulesSecrets = map[string]string{
	"OPSPINE_SHOPIFY_WEBHOOK_SECRET": testkit.Secret + ",shpss_rotated_secret_leak_check",
	"OPSPINE_SHOPIFY_ADMIN_TOKEN":    "shpat_admin_token_leak_check",
	"OPSPINE_SMTP_HOST":              "127.0.0.1",
	"OPSPINE_SMTP_PORT":              "1",
	"OPSPINE_SMTP_USERNAME":          "mailer",
	"OPSPINE_SMTP_PASSWORD":          "smtp_password_leak_check",
	"OPSPINE_SMTP_TLS":               "none",
	"OPSPINE_SMTP_TIMEOUT":           "1s",
	"OPSPINE_MAIL_FROM":              "ops@example.com",
	"OPSPINE_SLACK_URGENT_URL":       "http://127.0.0.1:1/services/T0/B0/urgent_leak_check",
	"OPSPINE_SLACK_ALERTS_URL":       "http://127.0.0.1:1/services/T0/B0/alerts_leak_check",
	"OPSPINE_SLACK_DIGEST_URL":       "http://127.0.0.1:1/services/T0/B0/digest_leak_check",
	"OPSPINE_PUBLIC_ID_KEY":          "public_id_key_leak_check",
}

// secretValues are the strings no API answer and no log line may contain.
func secretValues() []string {
	return []string{testkit.Secret, "shpss_rotated_secret_leak_check", "shpat_admin_token_leak_check",
		"smtp_password_leak_check", "urgent_leak_check", "alerts_leak_check", "digest_leak_check",
		"public_id_key_leak_check"}
}

// customerData are strings of the fixture order's customer.
var customerData = []string{"Jane", "Acacia", "+447700900123", "example.com\",", "BS1 4DJ"}

// systemWrittenCollections are the records only opspine writes, as the guard lists
// them (batches is created by staff through its creation action, so only its edits and
// deletes are checked here).
var systemWrittenCollections = hooks.SystemWritten()

const staffReadRule = `@request.auth.collectionName = "staff" && @request.auth.active = true`

type listAnswer struct {
	TotalItems int               `json:"totalItems"`
	Items      []json.RawMessage `json:"items"`
}

// startRulesServer serves with secrets configured and some of everything: a product, a
// paid order with its customer, a batch, a proof page view. The limiter is turned off:
// these tests make hundreds of calls from one address and are about rules, not rates.
func startRulesServer(t *testing.T) (*testkit.Server, string) {
	t.Helper()
	s := start(t, rulesSecrets)
	s.App.Settings().RateLimits.Enabled = false
	addProduct(t, s, "BEEF-2KG")
	for i, status := range []string{"pending", "paid"} {
		body := testkit.Order(testkit.WithStatus(status, t0.Add(time.Duration(i-60)*time.Minute))).JSON()
		if code := s.Deliver(t, testkit.Delivery{Topic: "orders/updated", Body: body}); code != http.StatusOK {
			t.Fatalf("deliver: %d", code)
		}
	}
	s.WaitSettled(t)
	batch := labBatch(t, s, "B-RULES-1")
	if testkit.Count(t, s.App, "orders", "", nil) == 0 || testkit.Count(t, s.App, "customers", "", nil) == 0 {
		t.Fatal("seed: no order or customer")
	}
	return s, batch
}

func firstID(t *testing.T, app core.App, table string) string {
	t.Helper()
	var id string
	_ = app.DB().NewQuery("SELECT id FROM " + table + " ORDER BY id LIMIT 1").Row(&id)
	return id
}

// An anonymous client lists, views and creates nothing in any collection (PocketBase's
// default users collection included: it was open for sign-up), sees no collection
// schema and no settings, and gets no customer data; the proof pages are custom routes.
func TestApiRulesAnonymousSeesNothing(t *testing.T) {
	s, _ := startRulesServer(t)
	cols, err := s.App.FindAllCollections()
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, code int, body []byte) {
		t.Helper()
		for _, v := range append(secretValues(), customerData...) {
			if strings.Contains(string(body), v) {
				t.Errorf("anonymous %s: answer contains %q", what, v)
			}
		}
	}
	for _, c := range cols {
		if c.IsView() {
			continue
		}
		path := "/api/collections/" + c.Name + "/records?perPage=500"
		code, body := s.Call(t, "GET", path, "", "")
		check("list "+c.Name, code, body)
		if code == http.StatusOK {
			var l listAnswer
			if err := json.Unmarshal(body, &l); err != nil {
				t.Fatal(err)
			}
			if l.TotalItems != 0 || len(l.Items) != 0 {
				t.Errorf("anonymous list %s: %d items", c.Name, l.TotalItems)
			}
		}
		before := testkit.Count(t, s.App, c.Name, "", nil)
		signUp := `{"email":"anon@example.net","password":"anonymous-pass-1","passwordConfirm":"anonymous-pass-1","name":"x"}`
		if code, body := s.Call(t, "POST", "/api/collections/"+c.Name+"/records", "", signUp); code < 400 {
			t.Errorf("anonymous create %s: %d %s", c.Name, code, body)
		}
		if after := testkit.Count(t, s.App, c.Name, "", nil); after != before {
			t.Errorf("anonymous create %s: %d rows, then %d", c.Name, before, after)
		}
		if id := firstID(t, s.App, c.Name); id != "" {
			code, body := s.Call(t, "GET", "/api/collections/"+c.Name+"/records/"+id, "", "")
			check("view "+c.Name, code, body)
			if code == http.StatusOK {
				t.Errorf("anonymous view %s/%s: 200 %s", c.Name, id, body)
			}
		}
	}
	for _, path := range []string{"/api/collections", "/api/settings", "/api/logs", "/api/ops/health", "/api/ops/jobs"} {
		code, body := s.Call(t, "GET", path, "", "")
		check(path, code, body)
		if code == http.StatusOK {
			t.Errorf("anonymous GET %s: 200", path)
		}
	}
}

// Operators read what staff may read, cannot write what opspine writes, and cannot do
// managers' actions.
func TestApiRulesOperatorReadsButCannotWriteOrManage(t *testing.T) {
	s, batch := startRulesServer(t)
	operator := testkit.Token(t, s.App, "operator")
	cols, err := s.App.FindAllCollections()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if c.ListRule != nil && *c.ListRule == staffReadRule {
			code, body := s.Call(t, "GET", "/api/collections/"+c.Name+"/records?perPage=1", operator, "")
			var l listAnswer
			if code != http.StatusOK || json.Unmarshal(body, &l) != nil {
				t.Errorf("operator list %s: %d %s, want 200", c.Name, code, body)
			} else if want := testkit.Count(t, s.App, c.Name, "", nil); l.TotalItems != want {
				t.Errorf("operator list %s: %d items, want %d", c.Name, l.TotalItems, want)
			}
		}
		editable, system := systemWrittenCollections[c.Name]
		if !system {
			continue
		}
		before := testkit.Count(t, s.App, c.Name, "", nil)
		if c.Name != "batches" {
			if code, body := s.Call(t, "POST", "/api/collections/"+c.Name+"/records", operator, `{}`); code < 400 {
				t.Errorf("operator create %s: %d %s", c.Name, code, body)
			}
		}
		id := firstID(t, s.App, c.Name)
		if id != "" {
			if f := lockedField(c, editable); f != nil {
				body, _ := json.Marshal(map[string]any{f.GetName(): handEdit(f)})
				if code, ans := s.Call(t, "PATCH", "/api/collections/"+c.Name+"/records/"+id, operator, string(body)); code < 400 {
					t.Errorf("operator edit %s.%s: %d %s", c.Name, f.GetName(), code, ans)
				}
			}
			if code, ans := s.Call(t, "DELETE", "/api/collections/"+c.Name+"/records/"+id, operator, ""); code < 400 {
				t.Errorf("operator delete %s: %d %s", c.Name, code, ans)
			}
		}
		if after := testkit.Count(t, s.App, c.Name, "", nil); after != before {
			t.Errorf("operator changed %s: %d rows, then %d", c.Name, before, after)
		}
	}

	customer := firstID(t, s.App, "customers")
	email := firstID(t, s.App, "email_outbox")
	if email == "" {
		email = "nosuchemail123"
	}
	staffID := func(role string) string {
		var id string
		_ = s.App.DB().NewQuery("SELECT id FROM staff WHERE role = {:r} LIMIT 1").Bind(map[string]any{"r": role}).Row(&id)
		return id
	}
	manager := testkit.Token(t, s.App, "manager")
	override := fmt.Sprintf(`{"batch":%q,"to_status":"released","requester":%q,"approver":%q,"justification":"operator tries"}`,
		batch, staffID("operator"), staffID("manager"))
	_ = manager
	managerActions := []struct{ method, path, body string }{
		{"POST", "/api/ops/jobs/webhook-retry/run", ""},
		{"POST", "/api/ops/webhooks/reprocess", `{"since":"2026-01-01T00:00:00Z"}`},
		{"POST", "/api/ops/inventory/adjust", `{"product":"x","quantity":5,"reason":"operator tries"}`},
		{"POST", "/api/ops/inventory/count", `{"product":"x","quantity":5}`},
		{"POST", "/api/ops/batches/" + batch + "/override", `{"to_status":"released","justification":"operator tries"}`},
		{"POST", "/api/ops/batches/" + batch + "/recall", `{"reason":"operator tries"}`},
		{"GET", "/api/ops/batches/" + batch + "/trace.csv", ""},
		{"GET", "/api/ops/customers/" + customer + "/export", ""},
		{"POST", "/api/ops/data-requests/x/export", ""},
		{"POST", "/api/ops/emails/" + email + "/retry", ""},
		// the same override through the admin UI's record API
		{"POST", "/api/collections/manual_override_audit/records", override},
	}
	statusBefore := batchStatus(t, s, batch)
	for _, a := range managerActions {
		if code, body := s.Call(t, a.method, a.path, operator, a.body); code != http.StatusForbidden {
			t.Errorf("operator %s %s: %d %s, want 403", a.method, a.path, code, body)
		}
	}
	if after := batchStatus(t, s, batch); after != statusBefore {
		t.Errorf("operator changed the batch's status %s → %s", statusBefore, after)
	}
	if n := testkit.Count(t, s.App, "manual_override_audit", "", nil); n != 0 {
		t.Errorf("%d override audit rows after an operator's attempts", n)
	}
}

// lockedField is a field of c that staff may not edit, with a value handEdit can set.
func lockedField(c *core.Collection, editable []string) core.Field {
	for _, f := range c.Fields {
		name := f.GetName()
		if f.GetSystem() || name == "id" || slices.Contains(editable, name) {
			continue
		}
		switch f.(type) {
		case *core.TextField, *core.NumberField, *core.BoolField:
			return f
		}
	}
	return nil
}

func handEdit(f core.Field) any {
	switch f.(type) {
	case *core.NumberField:
		return 424201
	case *core.BoolField:
		return true
	default:
		return "edited by hand"
	}
}

// No answer to any staff role (superusers included) contains a configured secret:
// every collection's list and first record, the ops API's reads, and PocketBase's own
// settings; and customer data reaches staff only (the anonymous test checks the rest).
func TestApiRulesNoSecretInAnyAnswer(t *testing.T) {
	s, batch := startRulesServer(t)
	// a shop row with secrets stored, as the configured shop is
	if testkit.Count(t, s.App, "shops", "webhook_secrets != '' AND webhook_secrets != '[]'", nil) == 0 {
		t.Fatal("the configured shop has no stored secrets: nothing to check")
	}
	cols, err := s.App.FindAllCollections()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, c := range cols {
		paths = append(paths, "/api/collections/"+c.Name+"/records?perPage=500")
		if id := firstID(t, s.App, c.Name); id != "" && !c.IsView() {
			paths = append(paths, "/api/collections/"+c.Name+"/records/"+id)
		}
	}
	paths = append(paths, "/api/collections", "/api/settings", "/api/ops/health", "/api/ops/jobs",
		"/api/ops/inventory/stock", "/api/ops/inventory/awaiting", "/api/ops/batches/"+batch+"/trace.csv",
		"/api/ops/customers/"+firstID(t, s.App, "customers")+"/export")
	sawCustomer := false
	for _, role := range []string{"operator", "manager", "admin", "superuser"} {
		token := testkit.Token(t, s.App, role)
		for _, p := range paths {
			code, body := s.Call(t, "GET", p, token, "")
			if code >= 500 {
				t.Errorf("%s GET %s: %d %s", role, p, code, body)
			}
			for _, v := range secretValues() {
				if strings.Contains(string(body), v) {
					t.Errorf("%s GET %s: answer contains the secret %q", role, p, v)
				}
			}
			if code == http.StatusOK && strings.Contains(string(body), "Acacia") || strings.Contains(string(body), "Jane") {
				sawCustomer = true
			}
		}
	}
	if !sawCustomer {
		t.Error("no staff answer showed the customer: the scan saw no customer data")
	}
}
