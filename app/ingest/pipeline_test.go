package ingest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/app/retry"
	"github.com/opspine/opspine/app/testkit"
)

// A burst larger than the queue is processed by the pipeline itself once it catches
// up, not left for the retry job's grace period.
func TestPipelineProcessesABurstLargerThanItsQueue(t *testing.T) {
	app := testkit.NewApp(t)
	if err := ingest.EnsureShop(app, testkit.Shop, []string{testkit.Secret}, ""); err != nil {
		t.Fatal(err)
	}
	proc := &ingest.Processor{App: app, MaxAttempts: 3, Backoff: retry.Backoff{Base: time.Minute, Max: time.Hour}}
	pipe := ingest.NewPipeline(proc, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const n = 150
	queued := 0
	for i := range n {
		body := testkit.Order(testkit.WithOrderID(int64(1000 + i))).JSON()
		d := ingest.Delivery{Source: ingest.SourceWebhook, Topic: "orders/create", ShopDomain: testkit.Shop,
			WebhookID: fmt.Sprintf("burst-%d", i), Payload: body, Headers: map[string]string{}}
		id, _, err := ingest.StoreDelivery(app.DB(), d, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if pipe.Enqueue(id) {
			queued++
		}
	}
	if queued >= n {
		t.Fatalf("the queue of 4 took all %d ids: the test does not overflow it", n)
	}
	pipe.Start(2)
	defer pipe.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for testkit.Count(t, app, "webhook_inbox", "status = 'processed'", nil) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d processed after 20s", testkit.Count(t, app, "webhook_inbox", "status = 'processed'", nil), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := testkit.Count(t, app, "orders", "", nil); got != n {
		t.Errorf("%d orders, want %d", got, n)
	}
}

// One bad delivery in a shared commit is rolled back to its savepoint alone: the
// others in the same batch are processed, and it goes to dead_letters.
func TestABadDeliveryInABatchDoesNotTakeTheOthersDown(t *testing.T) {
	app := testkit.NewApp(t)
	if err := ingest.EnsureShop(app, testkit.Shop, []string{testkit.Secret}, ""); err != nil {
		t.Fatal(err)
	}
	// a budget long enough that the four share one commit even under -race
	proc := &ingest.Processor{App: app, MaxAttempts: 3, Backoff: retry.Backoff{Base: time.Minute, Max: time.Hour}, BatchBudget: time.Minute}
	bodies := [][]byte{
		testkit.Order(testkit.WithOrderID(1)).JSON(),
		[]byte(`{"id": 2, "currency": "GBP", "total_price": "1.999"}`), // permanent: too many decimals
		testkit.Refund(7, "404", "1.00").JSON(),                        // transient: unknown order
		testkit.Order(testkit.WithOrderID(3)).JSON(),
	}
	topics := []string{"orders/create", "orders/create", "refunds/create", "orders/create"}
	var ids []string
	for i, b := range bodies {
		id, _, err := ingest.StoreDelivery(app.DB(), ingest.Delivery{Source: ingest.SourceWebhook, Topic: topics[i],
			ShopDomain: testkit.Shop, WebhookID: fmt.Sprint("b", i), Payload: b, Headers: map[string]string{}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	results, err := proc.ProcessBatch(ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"processed", "dead", "failed", "processed"}
	for i, r := range results {
		if r.Status != want[i] {
			t.Errorf("delivery %d: %s (%s), want %s", i, r.Status, r.Error, want[i])
		}
	}
	if got := testkit.Count(t, app, "orders", "", nil); got != 2 {
		t.Errorf("%d orders, want 2 (the bad one left nothing half-written)", got)
	}
	if got := testkit.Count(t, app, "dead_letters", "", nil); got != 1 {
		t.Errorf("%d dead letters, want 1", got)
	}
	if got := testkit.Count(t, app, "ops_events", "kind = 'order.created'", nil); got != 2 {
		t.Errorf("%d order.created events, want 2", got)
	}
}

// countingHandler counts the log records with a message.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int32
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}

// While the database refuses the pipeline's commits (a full disk: SQLite says
// "database or disk is full"), the deliveries stay pending and the pipeline tries
// again with backoff; once the database takes writes again it processes them by
// itself, without the webhook-retry job.
func TestPipelineRetriesItsCommitsUntilTheDatabaseTakesWritesAgain(t *testing.T) {
	app := testkit.NewApp(t)
	if err := ingest.EnsureShop(app, testkit.Shop, []string{testkit.Secret}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := app.DB().NewQuery(`CREATE TRIGGER disk_full BEFORE UPDATE OF status ON webhook_inbox
		WHEN NEW.status != 'pending' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`).Execute(); err != nil {
		t.Fatal(err)
	}
	proc := &ingest.Processor{App: app, MaxAttempts: 3, Backoff: retry.Backoff{Base: time.Minute, Max: time.Hour}}
	var failed atomic.Int32
	pipe := ingest.NewPipeline(proc, 16, slog.New(countingHandler{slog.NewTextHandler(io.Discard, nil), "process deliveries", &failed}))
	const n = 3
	for i := range n {
		d := ingest.Delivery{Source: ingest.SourceWebhook, Topic: "orders/create", ShopDomain: testkit.Shop,
			WebhookID: fmt.Sprintf("full-%d", i), Payload: testkit.Order(testkit.WithOrderID(int64(500 + i))).JSON(), Headers: map[string]string{}}
		id, _, err := ingest.StoreDelivery(app.DB(), d, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		pipe.Enqueue(id)
	}
	pipe.Start(2)
	defer pipe.Stop()

	deadline := time.Now().Add(20 * time.Second)
	for failed.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d failed commits logged after 20 s, want the pipeline to keep trying", failed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := testkit.Count(t, app, "webhook_inbox", "status = 'pending'", nil); got != n {
		t.Fatalf("%d of %d deliveries pending while the database refuses writes", got, n)
	}
	if _, err := app.DB().NewQuery(`DROP TRIGGER disk_full`).Execute(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for testkit.Count(t, app, "webhook_inbox", "status = 'processed'", nil) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d processed 20 s after the database took writes again", testkit.Count(t, app, "webhook_inbox", "status = 'processed'", nil), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := testkit.Count(t, app, "orders", "", nil); got != n {
		t.Errorf("%d orders, want %d", got, n)
	}
}
