package jobs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/monitor"
	"github.com/opspine/opspine/app/sqlstore"
	"github.com/opspine/opspine/app/testkit"
	"github.com/opspine/opspine/jobs"
)

const reconcileToken = "shpat_reconcile_test_token_42"

var reconcileT0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// newReconcileShopify starts a fake of the shop's Admin API that accepts reconcileToken
// on the API version opspine asks for by default, two orders a page.
func newReconcileShopify(t *testing.T) *testkit.ShopifyAdmin {
	return testkit.NewShopifyAdmin(t, reconcileToken, "2025-10", 2)
}

// startReconcileServer runs opspine with an Admin API token pointed at fake. The job's
// own schedule never fires in the test (1 January), so only RunNow runs it.
func startReconcileServer(t *testing.T, fake *testkit.ShopifyAdmin, token string) *testkit.Server {
	t.Helper()
	env := map[string]string{
		"OPSPINE_SHOPIFY_ADMIN_BASE_URL":     fake.URL,
		"OPSPINE_SHOPIFY_RECONCILE_SCHEDULE": "0 0 1 1 *",
	}
	if token != "" {
		env["OPSPINE_SHOPIFY_ADMIN_TOKEN"] = token
	}
	return testkit.StartServer(t, testkit.Config(t, env), reconcileT0)
}

// reconcileOrder is the fixture order under another id (beyond 2^53), updated at
// `updated` with financial status `financial`.
func reconcileOrder(n int64, financial string, updated time.Time) testkit.Doc {
	return testkit.Order(testkit.WithOrderID(9007199254740993+n), testkit.WithStatus(financial, updated))
}

func shopifyOrderID(n int64) string { return strconv.FormatInt(9007199254740993+n, 10) }

func runReconcile(t *testing.T, s *testkit.Server) monitor.Run {
	t.Helper()
	run, err := s.Spine.Scheduler.RunNow("shopify-reconcile", "test")
	if err != nil {
		t.Fatalf("run shopify-reconcile: %v", err)
	}
	return run
}

func checkFigures(t *testing.T, run monitor.Run, want map[string]int) {
	t.Helper()
	for k, v := range want {
		if got := fmt.Sprint(run.Figures[k]); got != strconv.Itoa(v) {
			t.Errorf("figure %s = %s, want %d (summary %q)", k, got, v, run.Summary)
		}
	}
}

func ordersSyncedAt(t *testing.T, s *testkit.Server) string {
	t.Helper()
	var at string
	err := s.App.DB().NewQuery(`SELECT orders_synced_at FROM shops WHERE domain = {:d}`).Bind(dbx.Params{"d": testkit.Shop}).Row(&at)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func orderState(t *testing.T, s *testkit.Server, shopifyID string) (status, updatedAt string) {
	t.Helper()
	err := s.App.DB().NewQuery(`SELECT status, shopify_updated_at FROM orders WHERE shopify_order_id = {:id}`).
		Bind(dbx.Params{"id": shopifyID}).Row(&status, &updatedAt)
	if err != nil {
		t.Fatalf("order %s: %v", shopifyID, err)
	}
	return status, updatedAt
}

func updatedAtMin(t *testing.T, reqs []url.URL) string {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("no request reached the fake Shopify")
	}
	return reqs[0].Query().Get("updated_at_min")
}

func TestShopifyReconcileFeedsMissingAndNewerOrdersThroughTheInbox(t *testing.T) {
	fake := newReconcileShopify(t)
	s := startReconcileServer(t, fake, reconcileToken)
	h := func(d time.Duration) time.Time { return reconcileT0.Add(d) }

	// What webhooks already brought.
	for _, doc := range []testkit.Doc{
		reconcileOrder(0, "paid", h(-1*time.Hour)),    // newer here than at Shopify (a late listing)
		reconcileOrder(1, "pending", h(-3*time.Hour)), // newer at Shopify: the paid webhook was lost
		reconcileOrder(2, "paid", h(-4*time.Hour)),    // the same on both sides
	} {
		s.Deliver(t, testkit.Delivery{Topic: "orders/create", Body: doc.JSON()})
	}
	s.WaitSettled(t)

	// What Shopify lists.
	cancelled := reconcileOrder(5, "voided", h(-30*time.Minute))
	testkit.WithCancelled(h(-30 * time.Minute))(cancelled)
	for _, doc := range []testkit.Doc{
		reconcileOrder(0, "pending", h(-2*time.Hour)),
		reconcileOrder(1, "paid", h(-90*time.Minute)),
		reconcileOrder(2, "paid", h(-4*time.Hour)),
		reconcileOrder(3, "paid", h(-5*time.Hour)), // missing here
		reconcileOrder(4, "paid", h(-6*time.Hour)), // missing here
		cancelled, // missing here
		reconcileOrder(6, "paid", h(-100*time.Hour)), // before the 72h lookback: not listed
	} {
		fake.Put(doc)
	}
	// Shopify rate limits the first request, then fails the retry once.
	fake.AnswerNth(1, testkit.ShopifyAnswer{Status: http.StatusTooManyRequests, RetryAfter: "0.05"})
	fake.AnswerNth(2, testkit.ShopifyAnswer{Status: http.StatusInternalServerError})

	run := runReconcile(t, s)
	if run.Outcome != monitor.OutcomeOK {
		t.Fatalf("outcome %s (%s), want ok", run.Outcome, run.Error)
	}
	checkFigures(t, run, map[string]int{"fetched": 6, "missing": 3, "newer": 1, "up_to_date": 2, "pages": 3, "rate_limited": 1, "failed": 0})
	if want := "fetched 6 orders in 3 pages: 3 missing, 1 newer, 2 up to date; waited out 1 rate limit"; run.Summary != want {
		t.Errorf("summary %q, want %q", run.Summary, want)
	}
	reqs := fake.TakeRequests()
	if len(reqs) != 5 {
		t.Errorf("%d requests to Shopify, want 5 (429, 500, then three pages)", len(reqs))
	}
	if got, want := updatedAtMin(t, reqs), h(-72*time.Hour).Format(time.RFC3339); got != want {
		t.Errorf("first run listed from %s, want the lookback %s", got, want)
	}

	// Missing orders came in through webhook_inbox, exactly as Shopify sent them, with their lines.
	if n := testkit.Count(t, s.App, "webhook_inbox", "source = 'shopify_reconcile' AND topic = 'orders/updated' AND status = 'processed'", nil); n != 4 {
		t.Errorf("%d processed reconcile deliveries in webhook_inbox, want 4 (3 missing, 1 newer)", n)
	}
	var payload string
	must(t, s.App.DB().NewQuery(`SELECT payload FROM webhook_inbox WHERE source = 'shopify_reconcile' AND webhook_id LIKE {:id}`).
		Bind(dbx.Params{"id": "reconcile:" + shopifyOrderID(3) + ":%"}).Row(&payload))
	if payload != string(reconcileOrder(3, "paid", h(-5*time.Hour)).JSON()) {
		t.Errorf("inbox payload is not the order exactly as listed:\n%s", payload)
	}
	missing := dbx.Params{"a": shopifyOrderID(3), "b": shopifyOrderID(4), "c": shopifyOrderID(5)}
	if n := testkit.Count(t, s.App, "orders", "shopify_order_id IN ({:a}, {:b}, {:c})", missing); n != 3 {
		t.Errorf("%d of the 3 missing orders created", n)
	}
	if n := testkit.Count(t, s.App, "order_items", `"order" IN (SELECT id FROM orders WHERE shopify_order_id IN ({:a}, {:b}, {:c}))`, missing); n != 6 {
		t.Errorf("%d line items on the created orders, want 6", n)
	}
	if n := testkit.Count(t, s.App, "orders", "shopify_order_id = {:id}", dbx.Params{"id": shopifyOrderID(6)}); n != 0 {
		t.Errorf("an order updated before the lookback was fetched")
	}
	for _, c := range []struct {
		n                 int64
		status, updatedAt string
	}{
		{0, "paid", sqlstore.FormatTime(h(-1 * time.Hour))},         // ours was newer: not overwritten
		{1, "paid", sqlstore.FormatTime(h(-90 * time.Minute))},      // Shopify's was newer: updated
		{5, "cancelled", sqlstore.FormatTime(h(-30 * time.Minute))}, // missing: created as it is now
	} {
		if status, at := orderState(t, s, shopifyOrderID(c.n)); status != c.status || at != c.updatedAt {
			t.Errorf("order %d: %s updated %s, want %s updated %s", c.n, status, at, c.status, c.updatedAt)
		}
	}
	if got, want := ordersSyncedAt(t, s), sqlstore.FormatTime(h(-5*time.Minute)); got != want {
		t.Errorf("cursor %q, want the run's start less 5 minutes %q", got, want)
	}
	if n := testkit.Count(t, s.App, "ops_events", "entity_type = 'shop' AND kind = 'shop.reconciled'", nil); n != 1 {
		t.Errorf("%d shop.reconciled events, want 1", n)
	}
	if n := testkit.Count(t, s.App, "monitoring_runs", "name = 'shopify-reconcile' AND outcome = 'ok' AND json_extract(figures, '$.missing') = 3", nil); n != 1 {
		t.Errorf("%d ok monitoring_runs rows with the figures, want 1", n)
	}

	// Fifteen minutes later, nothing has changed at Shopify: the run lists only from the cursor.
	s.Clock.Advance(15 * time.Minute)
	run = runReconcile(t, s)
	checkFigures(t, run, map[string]int{"fetched": 0, "missing": 0, "newer": 0, "pages": 1, "rate_limited": 0})
	if got, want := updatedAtMin(t, fake.TakeRequests()), h(-5*time.Minute).Format(time.RFC3339); got != want {
		t.Errorf("second run listed from %s, want the cursor %s", got, want)
	}
	if got, want := ordersSyncedAt(t, s), sqlstore.FormatTime(h(10*time.Minute)); got != want {
		t.Errorf("cursor %q after the second run, want %q", got, want)
	}
	if n := testkit.Count(t, s.App, "ops_events", "kind = 'shop.reconciled'", nil); n != 1 {
		t.Errorf("%d shop.reconciled events; a run that fetched nothing writes none", n)
	}

	// An order changes at Shopify and its webhook is lost: the next run brings it.
	fake.Put(testkit.Order(testkit.WithOrderID(9007199254740993), testkit.WithCancelled(h(12*time.Minute))))
	run = runReconcile(t, s)
	checkFigures(t, run, map[string]int{"fetched": 1, "newer": 1, "pages": 1})
	if status, _ := orderState(t, s, shopifyOrderID(0)); status != "cancelled" {
		t.Errorf("order 0 is %s after Shopify cancelled it, want cancelled", status)
	}
	if n := testkit.Count(t, s.App, "webhook_inbox", "source = 'shopify_reconcile'", nil); n != 5 {
		t.Errorf("%d reconcile deliveries, want 5", n)
	}
}

func TestShopifyReconcileLeavesTheCursorWhenShopifyFails(t *testing.T) {
	cursor := reconcileT0.Add(-time.Hour)
	tests := []struct {
		name         string
		breakShopify func(f *testkit.ShopifyAdmin)
		wantFetched  int // before the failure
	}{
		{"token revoked", func(f *testkit.ShopifyAdmin) { f.SetToken("shpat_another_token") }, 0},
		{"fails on the second page", func(f *testkit.ShopifyAdmin) {
			f.AnswerNth(2, testkit.ShopifyAnswer{Status: http.StatusUnauthorized})
		}, 2},
		{"keeps failing with 500", func(f *testkit.ShopifyAdmin) {
			for i := 1; i <= 4; i++ {
				f.AnswerNth(i, testkit.ShopifyAnswer{Status: http.StatusInternalServerError})
			}
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := newReconcileShopify(t)
			s := startReconcileServer(t, fake, reconcileToken)
			_, err := s.App.DB().NewQuery(`UPDATE shops SET orders_synced_at = {:at} WHERE domain = {:d}`).
				Bind(dbx.Params{"at": sqlstore.FormatTime(cursor), "d": testkit.Shop}).Execute()
			must(t, err)
			for i := int64(0); i < 3; i++ {
				fake.Put(reconcileOrder(i, "paid", cursor.Add(time.Duration(i+1)*10*time.Minute)))
			}
			tc.breakShopify(fake)

			run := runReconcile(t, s)
			if run.Outcome != monitor.OutcomeError || !strings.Contains(run.Error, "HTTP ") {
				t.Fatalf("outcome %s, error %q: want error with Shopify's HTTP status", run.Outcome, run.Error)
			}
			if strings.Contains(run.Error, reconcileToken) || strings.Contains(run.Summary, reconcileToken) {
				t.Errorf("the run record contains the access token: %q %q", run.Error, run.Summary)
			}
			checkFigures(t, run, map[string]int{"fetched": tc.wantFetched, "missing": tc.wantFetched})
			if got := ordersSyncedAt(t, s); got != sqlstore.FormatTime(cursor) {
				t.Errorf("cursor moved to %q after a failed run", got)
			}
			if n := testkit.Count(t, s.App, "monitoring_runs", "name = 'shopify-reconcile' AND outcome = 'error' AND error != ''", nil); n != 1 {
				t.Errorf("%d error monitoring_runs rows, want 1", n)
			}
			if got, want := testkit.Count(t, s.App, "ops_events", "kind = 'shop.reconciled'", nil), min(tc.wantFetched, 1); got != want {
				t.Errorf("%d shop.reconciled events, want %d", got, want)
			}
			if got, want := updatedAtMin(t, fake.TakeRequests()), cursor.Format(time.RFC3339); got != want {
				t.Errorf("listed from %s, want the cursor %s", got, want)
			}

			// Shopify recovers: the next run repeats from the same cursor and catches up.
			fake.SetToken(reconcileToken)
			fake.ClearAnswers()
			run = runReconcile(t, s)
			if run.Outcome != monitor.OutcomeOK {
				t.Fatalf("outcome %s (%s) after Shopify recovered", run.Outcome, run.Error)
			}
			checkFigures(t, run, map[string]int{"fetched": 3, "missing": 3 - tc.wantFetched, "up_to_date": tc.wantFetched})
			if got, want := updatedAtMin(t, fake.TakeRequests()), cursor.Format(time.RFC3339); got != want {
				t.Errorf("the run after the failure listed from %s, want the unchanged cursor %s", got, want)
			}
			if n := testkit.Count(t, s.App, "orders", "", nil); n != 3 {
				t.Errorf("%d orders, want 3", n)
			}
			if got, want := ordersSyncedAt(t, s), sqlstore.FormatTime(reconcileT0.Add(-5*time.Minute)); got != want {
				t.Errorf("cursor %q after recovering, want %q", got, want)
			}
		})
	}
}

func TestShopifyReconcileSkipsAnUninstalledShop(t *testing.T) {
	fake := newReconcileShopify(t)
	s := startReconcileServer(t, fake, reconcileToken)
	fake.Put(reconcileOrder(0, "paid", reconcileT0.Add(-time.Hour)))
	_, err := s.App.DB().NewQuery(`UPDATE shops SET uninstalled_at = {:at} WHERE domain = {:d}`).
		Bind(dbx.Params{"at": sqlstore.FormatTime(reconcileT0.Add(-2 * time.Hour)), "d": testkit.Shop}).Execute()
	must(t, err)

	run := runReconcile(t, s)
	if run.Outcome != monitor.OutcomeOK || !strings.HasPrefix(run.Summary, "skipped: the app was uninstalled") {
		t.Errorf("outcome %s, summary %q: want ok and skipped", run.Outcome, run.Summary)
	}
	if n := len(fake.TakeRequests()); n != 0 {
		t.Errorf("%d requests to Shopify for an uninstalled shop", n)
	}
	if got := ordersSyncedAt(t, s); got != "" {
		t.Errorf("cursor set to %q", got)
	}
}

func TestShopifyReconcileIsScheduledOnlyWithAnAdminToken(t *testing.T) {
	for _, tc := range []struct {
		token      string
		registered bool
	}{{"", false}, {reconcileToken, true}} {
		t.Run(fmt.Sprintf("token set %v", tc.token != ""), func(t *testing.T) {
			fake := newReconcileShopify(t)
			s := startReconcileServer(t, fake, tc.token)
			list, err := s.Spine.Scheduler.List()
			must(t, err)
			var found *jobs.Status
			for i := range list {
				if list[i].Name == "shopify-reconcile" {
					found = &list[i]
				}
			}
			if (found != nil) != tc.registered {
				t.Fatalf("shopify-reconcile registered %v, want %v", found != nil, tc.registered)
			}
			if found != nil && (found.Schedule != "0 0 1 1 *" || found.Timeout != "10m0s") {
				b, _ := json.Marshal(found)
				t.Errorf("job %s: want the configured schedule and a 10m timeout", b)
			}
			if _, err := s.Spine.Scheduler.RunNow("shopify-reconcile", "test"); tc.registered == errors.Is(err, jobs.ErrUnknownJob) {
				t.Errorf("RunNow: %v", err)
			}
		})
	}
}
