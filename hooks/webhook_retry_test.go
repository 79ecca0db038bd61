package hooks_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/testkit"
)

type inboxState struct {
	ID       string `db:"id"`
	Status   string `db:"status"`
	Attempts int    `db:"attempts"`
	Next     string `db:"next_attempt_at"`
	Error    string `db:"last_error"`
}

func inboxRow(t *testing.T, s *testkit.Server, topic string) inboxState {
	t.Helper()
	var st inboxState
	if err := s.App.DB().NewQuery(`SELECT id, status, attempts, next_attempt_at, last_error FROM webhook_inbox WHERE topic = {:t}`).
		Bind(dbx.Params{"t": topic}).One(&st); err != nil {
		t.Fatalf("inbox row %s: %v", topic, err)
	}
	return st
}

func runJob(t *testing.T, s *testkit.Server, name string) {
	t.Helper()
	run, err := s.Spine.Scheduler.RunNow(name, "test")
	if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	if run.Outcome != "ok" {
		t.Fatalf("run %s: outcome %s: %s", name, run.Outcome, run.Error)
	}
}

// A refund for an order not seen yet is a transient failure: retried with backoff by
// the webhook-retry job, dead after the last attempt, and replayable by staff once the
// order has arrived.
func TestTransientFailureIsRetriedWithBackoffThenDeadThenReprocessed(t *testing.T) {
	s := start(t, map[string]string{"OPSPINE_WEBHOOK_MAX_ATTEMPTS": "3", "OPSPINE_WEBHOOK_RETRY_BASE": "1m"})
	refund := testkit.Refund(9007199254790777, orderID, "58.99")
	if code := s.Deliver(t, testkit.Delivery{Topic: "refunds/create", Body: refund.JSON()}); code != 200 {
		t.Fatalf("status %d", code)
	}
	s.WaitSettled(t)
	first := inboxRow(t, s, "refunds/create")
	if first.Status != "failed" || first.Attempts != 1 || !strings.Contains(first.Error, "not known yet") {
		t.Fatalf("after first attempt: %+v", first)
	}
	// Backoff: base 1m with jitter between 30s and 60s. Not due yet at +29s.
	s.Clock.Advance(29 * time.Second)
	runJob(t, s, "webhook-retry")
	if got := inboxRow(t, s, "refunds/create"); got.Attempts != 1 {
		t.Fatalf("retried before its backoff: %+v", got)
	}
	s.Clock.Advance(31 * time.Second)
	runJob(t, s, "webhook-retry")
	if got := inboxRow(t, s, "refunds/create"); got.Status != "failed" || got.Attempts != 2 {
		t.Fatalf("after second attempt: %+v", got)
	}
	s.Clock.Advance(2 * time.Minute) // second delay: 1m to 2m
	runJob(t, s, "webhook-retry")
	dead := inboxRow(t, s, "refunds/create")
	if dead.Status != "dead" || dead.Attempts != 3 {
		t.Fatalf("after the last attempt: %+v", dead)
	}
	if n := testkit.Count(t, s.App, "dead_letters", "inbox = {:id} AND resolved = FALSE AND reason LIKE '%gave up after 3 attempts%'",
		map[string]any{"id": dead.ID}); n != 1 {
		t.Fatalf("%d open dead letters for the delivery, want 1", n)
	}

	// The order arrives; staff reprocess the dead delivery.
	s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order(testkit.WithStatus("paid", t0)).JSON()})
	s.WaitSettled(t)
	token := testkit.Token(t, s.App, "operator")
	code, body := s.Call(t, http.MethodPost, "/api/ops/webhooks/"+dead.ID+"/reprocess", token, "")
	if code != 200 || jsonField(t, body, "status") != "processed" {
		t.Fatalf("reprocess: %d %s", code, body)
	}
	o := loadOrder(t, s, orderID)
	if o.Status != "refunded" || o.Refunded != 5899 {
		t.Fatalf("order after refund: status %s refunded %d, want refunded 5899", o.Status, o.Refunded)
	}
	if n := testkit.Count(t, s.App, "dead_letters", "inbox = {:id} AND resolved = TRUE AND resolved_by LIKE 'staff:%'",
		map[string]any{"id": dead.ID}); n != 1 {
		t.Errorf("dead letter not resolved by the staff member")
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind = 'webhook.reprocess_requested' AND actor LIKE 'staff:%'", nil); n != 1 {
		t.Errorf("%d reprocess events by staff, want 1", n)
	}
}

func TestBulkReprocessSinceATimeRequeuesFailedAndDeadDeliveries(t *testing.T) {
	s := start(t, map[string]string{"OPSPINE_WEBHOOK_MAX_ATTEMPTS": "1"})
	for i, id := range []int64{9007199254790001, 9007199254790002} {
		_ = i
		s.Deliver(t, testkit.Delivery{Topic: "refunds/create", Body: testkit.Refund(id, orderID, "10.00").JSON()})
	}
	s.WaitSettled(t)
	if n := testkit.Count(t, s.App, "webhook_inbox", "status = 'dead'", nil); n != 2 {
		t.Fatalf("%d dead deliveries, want 2", n)
	}
	s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order(testkit.WithStatus("paid", t0)).JSON()})
	s.WaitSettled(t)

	operator := testkit.Token(t, s.App, "operator")
	if code, _ := s.Call(t, http.MethodPost, "/api/ops/webhooks/reprocess", operator, `{"since":"2026-01-01T00:00:00Z"}`); code != http.StatusForbidden {
		t.Errorf("operator bulk reprocess: status %d, want 403", code)
	}
	manager := testkit.Token(t, s.App, "manager")
	if code, body := s.Call(t, http.MethodPost, "/api/ops/webhooks/reprocess", manager, `{"since":"yesterday"}`); code != 400 || !strings.Contains(string(body), "RFC 3339") {
		t.Errorf("bad since: %d %s", code, body)
	}
	code, body := s.Call(t, http.MethodPost, "/api/ops/webhooks/reprocess", manager, `{"since":"2026-01-01T00:00:00Z"}`)
	if code != http.StatusAccepted || jsonField(t, body, "marked") != float64(2) {
		t.Fatalf("bulk reprocess: %d %s", code, body)
	}
	s.WaitSettled(t)
	if n := testkit.Count(t, s.App, "refunds", "", nil); n != 2 {
		t.Errorf("%d refunds after reprocessing, want 2", n)
	}
	if o := loadOrder(t, s, orderID); o.Refunded != 2000 {
		t.Errorf("refunded %d, want 2000", o.Refunded)
	}
}

// A process that stops after committing a delivery leaves it pending; the retry job
// (which also runs at start) finishes it.
func TestPendingDeliveryLeftByAStoppedProcessIsPickedUpByTheRetryJob(t *testing.T) {
	s := start(t, nil)
	s.Spine.Pipeline.Stop() // the pipeline is gone, as after a crash
	if code := s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: testkit.Order().JSON()}); code != 200 {
		t.Fatalf("status %d", code)
	}
	runJob(t, s, "webhook-retry")
	if n := testkit.Count(t, s.App, "orders", "", nil); n != 0 {
		t.Fatalf("the retry job must leave a fresh pending delivery to the pipeline for a grace period")
	}
	s.Clock.Advance(time.Minute)
	runJob(t, s, "webhook-retry")
	if n := testkit.Count(t, s.App, "orders", "", nil); n != 1 {
		t.Fatalf("%d orders after the retry job, want 1", n)
	}
	if st := inboxRow(t, s, "orders/create"); st.Status != "processed" || st.Attempts != 1 {
		t.Fatalf("inbox %+v", st)
	}
}
