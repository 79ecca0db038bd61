package hooks_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/alerts"
	"github.com/opspine/opspine/app/outbox"
	"github.com/opspine/opspine/app/testkit"
	"github.com/opspine/opspine/templates"
)

// Nothing PocketBase logs (the _logs table, where everything written with app.Logger()
// ends up) and no error opspine records for a failed job or message contains a
// configured secret or the customer's street, phone or card digits, after a server with
// secrets configured has had good deliveries, a badly signed one, a malformed one, a
// dead letter, a failed SMTP send and failed Slack posts (the Slack hosts refuse).
func TestLogsContainNoSecretOrCardOrAddress(t *testing.T) {
	env := map[string]string{"OPSPINE_WEBHOOK_MAX_ATTEMPTS": "1"}
	for k, v := range rulesSecrets {
		env[k] = v
	}
	s := start(t, env)
	settings := s.App.Settings()
	settings.Logs.MaxDays = 5   // PocketBase's test app turns the log table off
	settings.Logs.MinLevel = -4 // debug: scan everything opspine and PocketBase write
	settings.Logs.LogIP = true
	settings.Logs.LogAuthId = true
	if err := s.App.Save(settings); err != nil {
		t.Fatal(err)
	}
	addProduct(t, s, "BEEF-2KG")
	order := testkit.Order(testkit.WithStatus("paid", t0.Add(-time.Hour))).JSON()

	// a good delivery, a badly signed one, a malformed one (cut after the street), and a
	// refund for an unknown order that dies on its one attempt
	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: order}); code != http.StatusOK {
		t.Fatalf("good delivery: %d", code)
	}
	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: order, Signature: "bm90IHRoZSBzaWduYXR1cmU="}); code != http.StatusUnauthorized {
		t.Fatalf("badly signed delivery: %d, want 401", code)
	}
	cut := order[:strings.Index(string(order), "Acacia")+40]
	s.Deliver(t, testkit.Delivery{Topic: "orders/updated", Body: cut})
	broken := testkit.Order(testkit.WithOrderID(9007199254799001), func(d testkit.Doc) { d["line_items"] = "12 Acacia Avenue 4242" }).JSON()
	s.Deliver(t, testkit.Delivery{Topic: "orders/updated", Body: broken})
	if code := s.Deliver(t, testkit.Delivery{Topic: "refunds/create", Body: testkit.Refund(9007199254790777, "9007199254000001", "58.99").JSON()}); code != http.StatusOK {
		t.Fatalf("refund delivery: %d", code)
	}
	s.WaitSettled(t)
	if testkit.Count(t, s.App, "dead_letters", "", nil) == 0 {
		t.Error("no dead letter was made")
	}
	// a sign-in with a secret as the password
	s.Call(t, "POST", "/api/collections/staff/auth-with-password", "",
		`{"identity":"Jane.Doe@example.com","password":"smtp_password_leak_check"}`)

	// an email through an SMTP server that refuses, Slack posts to hosts that refuse
	if _, _, err := outbox.Enqueue(s.App, s.Clock.Now(), outbox.Email{
		To: []string{"production@copacker.test"}, Template: "copacker_label", Brand: "opspine",
		Data: templates.CopackerLabel{BatchCode: "B-261120-001", ProducedOn: t0, KgProduced: 10, LabelFile: "l.pdf",
			VerifyURL: "https://proof.example.com/b/x"},
		IdempotencyKey: "log-scan:1",
		Attachments:    []outbox.Attachment{{Name: "l.pdf", Content: labPDF("log-scan")}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := alerts.Raise(s.App.DB(), s.Clock.Now(), alerts.Alert{Severity: alerts.Critical, Title: "Orders are waiting",
		Body: "test", SourceCheck: "log_scan", DedupeKey: "log_scan:1"}); err != nil {
		t.Fatal(err)
	}
	for _, job := range []string{"email-outbox-send", "alert-deliver", "webhook-retry", "shopify-reconcile"} {
		if _, err := s.Spine.Scheduler.RunNow(job, "test"); err != nil {
			t.Logf("run %s: %v", job, err)
		}
	}
	if testkit.Count(t, s.App, "alert_notifications", "state != 'sent'", nil) == 0 ||
		testkit.Count(t, s.App, "email_outbox", "state != 'sent'", nil) == 0 {
		t.Error("the Slack and SMTP sends did not fail: nothing to scan")
	}

	logs := flushedLogs(t, s)
	forbidden := append(secretValues(), "Acacia", "+447700900123", "4242")
	for _, l := range logs {
		for _, v := range forbidden {
			if strings.Contains(l, v) {
				t.Errorf("a log contains %q: %s", v, l)
			}
		}
	}
	for _, e := range recordedErrors(t, s) {
		for _, v := range forbidden {
			if strings.Contains(e, v) {
				t.Errorf("a recorded error contains %q: %s", v, e)
			}
		}
	}
}

// flushedLogs waits until PocketBase's log writer has written what it holds (it writes
// 3 s after the last log line) and returns every _logs row as text.
func flushedLogs(t *testing.T, s *testkit.Server) []string {
	t.Helper()
	count := func() int {
		var n int
		if err := s.App.AuxDB().NewQuery("SELECT COUNT(*) FROM _logs").Row(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	last, stableSince := -1, time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if n := count(); n != last {
			last, stableSince = n, time.Now()
		} else if n > 0 && time.Since(stableSince) > 4*time.Second {
			break
		}
	}
	var rows []struct {
		Level   int    `db:"level"`
		Message string `db:"message"`
		Data    string `db:"data"`
	}
	if err := s.App.AuxDB().NewQuery("SELECT level, message, data FROM _logs").All(&rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("nothing was logged: the scan would prove nothing")
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprintf("[%d] %s %s", r.Level, r.Message, r.Data)
	}
	return out
}

// recordedErrors are the error and reason columns of opspine's own run and delivery
// records: the log staff read in the admin UI.
func recordedErrors(t *testing.T, s *testkit.Server) []string {
	t.Helper()
	var out []string
	for _, table := range []string{"monitoring_runs", "webhook_inbox", "dead_letters", "email_outbox", "alert_notifications", "ops_events"} {
		var cols []struct {
			Name string `db:"name"`
		}
		if err := s.App.DB().NewQuery("SELECT name FROM pragma_table_info({:t})").Bind(dbx.Params{"t": table}).All(&cols); err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			if !strings.Contains(c.Name, "error") && c.Name != "reason" {
				continue
			}
			var vals []string
			if err := s.App.DB().NewQuery(fmt.Sprintf("SELECT COALESCE(CAST([[%s]] AS TEXT), '') FROM %s", c.Name, table)).Column(&vals); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				out = append(out, table+"."+c.Name+": "+v)
			}
		}
	}
	return out
}
