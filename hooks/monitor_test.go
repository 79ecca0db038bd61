package hooks_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/app/testkit"
)

func lastRun(t *testing.T, s *testkit.Server, check string) monitor.Run {
	t.Helper()
	run, ok, err := monitor.LastRun(s.App.DB(), monitor.JobName(check))
	if err != nil || !ok {
		t.Fatalf("no run of %s: %v", check, err)
	}
	return run
}

func runCheck(t *testing.T, s *testkit.Server, check string) monitor.Run {
	t.Helper()
	if _, err := s.Spine.Scheduler.RunNow(monitor.JobName(check), "test"); err != nil {
		t.Fatalf("run %s: %v", check, err)
	}
	return lastRun(t, s, check)
}

type alertRow struct {
	Severity    string `db:"severity"`
	State       string `db:"state"`
	Occurrences int    `db:"occurrences"`
}

func checkAlert(t *testing.T, s *testkit.Server, check string) (alertRow, bool) {
	t.Helper()
	var a alertRow
	err := s.App.DB().NewQuery(`SELECT severity, state, occurrences FROM alerts WHERE source_check = {:c} ORDER BY created DESC LIMIT 1`).
		Bind(dbx.Params{"c": check}).One(&a)
	return a, err == nil
}

// A delivery stuck before processing warns, then goes critical, and the alert resolves
// once it is processed; each run is a monitoring_runs row with its figures.
func TestOrderIngestionCheckWarnsEscalatesAndResolves(t *testing.T) {
	s := start(t, nil)
	if run := runCheck(t, s, "order-ingestion-slo"); run.Outcome != "ok" || run.Alerted {
		t.Fatalf("empty inbox: %+v", run)
	}
	s.Spine.Pipeline.Stop()
	s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON()})

	s.Clock.Advance(6 * time.Minute)
	run := runCheck(t, s, "order-ingestion-slo")
	if run.Outcome != "warning" || !run.Alerted || run.Figures["oldest_pending_minutes"].(float64) < 6 {
		t.Fatalf("after 6 min pending: %+v", run)
	}
	if a, ok := checkAlert(t, s, "order-ingestion-slo"); !ok || a.State != "open" || a.Severity != "warning" {
		t.Fatalf("alert %+v %v", a, ok)
	}
	s.Clock.Advance(10 * time.Minute)
	if run := runCheck(t, s, "order-ingestion-slo"); run.Outcome != "critical" || !run.Alerted {
		t.Fatalf("after 16 min pending: %+v", run)
	}
	if a, _ := checkAlert(t, s, "order-ingestion-slo"); a.Severity != "critical" || a.State != "open" {
		t.Fatalf("alert not escalated: %+v", a)
	}
	if _, err := s.Spine.Scheduler.RunNow("webhook-retry", "test"); err != nil {
		t.Fatal(err)
	}
	if run := runCheck(t, s, "order-ingestion-slo"); run.Outcome != "ok" {
		t.Fatalf("after processing: %+v", run)
	}
	if a, _ := checkAlert(t, s, "order-ingestion-slo"); a.State != "resolved" {
		t.Fatalf("alert not resolved: %+v", a)
	}
}

func TestThresholdsAreReadFromTheConfigCollection(t *testing.T) {
	s := start(t, nil)
	s.Spine.Pipeline.Stop()
	s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON()})
	s.Clock.Advance(2 * time.Minute)
	if run := runCheck(t, s, "order-ingestion-slo"); run.Outcome != "ok" {
		t.Fatalf("2 min with the default 5 min threshold: %s", run.Outcome)
	}
	rec, err := s.App.FindFirstRecordByData("config", "key", "ingest_oldest_pending_warning_minutes")
	if err != nil {
		t.Fatalf("the setting is not seeded in config: %v", err)
	}
	rec.Set("value", 1)
	if err := s.App.Save(rec); err != nil {
		t.Fatal(err)
	}
	if run := runCheck(t, s, "order-ingestion-slo"); run.Outcome != "warning" {
		t.Fatalf("2 min with a 1 min threshold: %s", run.Outcome)
	}
}

func TestDeadLettersAndRetryQueueAreWatched(t *testing.T) {
	s := start(t, map[string]string{"OPSPINE_WEBHOOK_MAX_ATTEMPTS": "5"})
	s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: []byte(`{"broken":`)})
	s.Deliver(t, testkit.Delivery{Topic: "refunds/create", Body: testkit.Refund(1, orderID, "1.00").JSON()})
	s.WaitSettled(t)
	run := runCheck(t, s, "order-ingestion-slo")
	if run.Outcome != "warning" || run.Figures["dead_letters_since_last_run"].(float64) != 1 || run.Figures["failures_last_hour"].(float64) != 2 {
		t.Fatalf("ingestion check: %+v", run)
	}
	if run := runCheck(t, s, "retry-queue-depth"); run.Outcome != "ok" || run.Figures["depth"].(float64) != 1 {
		t.Fatalf("retry queue: %+v", run)
	}
}

func TestJobHealthIsADeadManSwitchForEveryJob(t *testing.T) {
	s := start(t, nil)
	if run := runCheck(t, s, "job-health"); run.Outcome != "ok" {
		t.Fatalf("fresh start: %+v", run)
	}
	// nothing has run for an hour: every job is late, the monitor included
	s.Clock.Advance(time.Hour)
	run := runCheck(t, s, "job-health")
	if run.Outcome != "critical" || run.Figures["late"].(float64) < 5 {
		t.Fatalf("after an hour of silence: %+v", run)
	}
	if a, ok := checkAlert(t, s, "job-health"); !ok || a.Severity != "critical" {
		t.Fatalf("no critical alert: %+v", a)
	}
}

func TestHealthEndpointShowsEveryCheckForStaffOnly(t *testing.T) {
	s := start(t, nil)
	runCheck(t, s, "heartbeat")
	if code, _ := s.Call(t, "GET", "/api/ops/health", "", ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", code)
	}
	code, body := s.Call(t, "GET", "/api/ops/health", testkit.Token(t, s.App, "operator"), "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var h struct {
		Status string `json:"status"`
		Checks []struct {
			Check   string `json:"check"`
			Status  string `json:"status"`
			LastRun *struct {
				Figures map[string]any `json:"figures"`
			} `json:"last_run"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, c := range h.Checks {
		seen[c.Check] = c.Status
		if c.Check == "heartbeat" && (c.LastRun == nil || c.LastRun.Figures["uptime_seconds"] == nil) {
			t.Errorf("heartbeat figures missing: %s", body)
		}
	}
	for _, want := range []string{"order-ingestion-slo", "retry-queue-depth", "outbox-health", "job-health", "heartbeat"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("check %s not listed: %s", want, body)
		}
	}
	if seen["heartbeat"] != "ok" || seen["job-health"] != "never_ran" {
		t.Errorf("statuses %v", seen)
	}
	if code, _ := s.Call(t, "GET", "/api/health", "", ""); code != 200 {
		t.Errorf("PocketBase's liveness probe: %d", code)
	}
}

func TestDailySnapshotPostsYesterdayToTheDigest(t *testing.T) {
	s := start(t, nil)
	// t0 is 2026-11-20 09:00 UTC; the fixture order was created on the 20th
	s.Deliver(t, testkit.Delivery{Topic: "orders/paid", Body: testkit.Order(testkit.WithStatus("paid", t0)).JSON()})
	s.WaitSettled(t)
	s.Clock.Advance(24 * time.Hour) // the next morning
	if _, err := s.Spine.Scheduler.RunNow("daily-snapshot", "test"); err != nil {
		t.Fatal(err)
	}
	run, _, err := monitor.LastRun(s.App.DB(), "daily-snapshot")
	if err != nil || run.Outcome != "ok" {
		t.Fatalf("%+v %v", run, err)
	}
	if run.Figures["orders"].(float64) != 1 || run.Figures["revenue_minor"].(map[string]any)["GBP"].(float64) != 5899 {
		t.Fatalf("snapshot figures %+v", run.Figures)
	}
	var payload string
	if err := s.App.DB().NewQuery(`SELECT payload FROM alert_notifications WHERE kind = 'digest'`).Row(&payload); err != nil {
		t.Fatalf("no digest queued: %v", err)
	}
	for _, want := range []string{"Friday 20 November 2026", "GBP 58.99"} {
		if !strings.Contains(payload, want) {
			t.Errorf("digest lacks %q: %s", want, payload)
		}
	}
}

func TestStaffResolveAnAlertFromTheAdminUIButCannotEditIt(t *testing.T) {
	s := start(t, nil)
	s.Clock.Advance(time.Hour)
	runCheck(t, s, "job-health")
	var id string
	if err := s.App.DB().NewQuery(`SELECT id FROM alerts WHERE state = 'open'`).Row(&id); err != nil {
		t.Fatalf("no open alert: %v", err)
	}
	superuser := testkit.Token(t, s.App, "superuser")
	if code, body := s.Call(t, "PATCH", "/api/collections/alerts/records/"+id, superuser, `{"severity":"info"}`); code != 400 {
		t.Errorf("hand edit of severity: %d %s, want 400", code, body)
	}
	if code, body := s.Call(t, "PATCH", "/api/collections/alerts/records/"+id, superuser, `{"state":"resolved"}`); code != 200 {
		t.Fatalf("resolve by hand: %d %s", code, body)
	}
	if n := testkit.Count(t, s.App, "alerts", "id = {:id} AND state = 'resolved'", map[string]any{"id": id}); n != 1 {
		t.Errorf("alert not resolved")
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind = 'alert.resolved_by_hand' AND actor LIKE 'superuser:%'", nil); n != 1 {
		t.Errorf("resolution by hand not audited")
	}
	if code, _ := s.Call(t, "DELETE", "/api/collections/alerts/records/"+id, superuser, ""); code != 400 {
		t.Errorf("deleting an alert: %d, want 400", code)
	}
}
