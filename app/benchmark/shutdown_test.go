package benchmark

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// SIGTERM under load: the real binary stops within a bounded time with exit status 0,
// and after a restart every delivery it answered 200 is stored once and ends processed
// (the pipeline takes what was left pending at start), one order each.
func TestSigtermUnderLoadStopsInTimeAndLosesNothing(t *testing.T) {
	ctx, exe, dir, secret := realBinary(t, 3*time.Minute)
	c, err := startChild(ctx, exe, dir, secret)
	if err != nil {
		t.Fatal(err)
	}
	deliveries := makeDeliveries("sigterm", 1, 3000, secret)
	client := newClient(8)
	var (
		mu       sync.Mutex
		answered = map[string]bool{}
		next     int
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next == len(deliveries) {
					mu.Unlock()
					return
				}
				d := deliveries[next]
				next++
				mu.Unlock()
				status, _, err := post(ctx, client, c.base, d)
				if err != nil {
					return // the server has gone
				}
				if status == http.StatusOK {
					mu.Lock()
					answered[d.webhookID] = true
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Second)
	began := time.Now()
	if err := c.stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, c.logTail())
	}
	took := time.Since(began)
	wg.Wait()
	if c.waitErr != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", c.waitErr, c.logTail())
	}
	if took > 10*time.Second {
		t.Errorf("took %s to stop after SIGTERM, want under 10s", took)
	}
	if len(answered) == 0 || len(answered) == len(deliveries) {
		t.Fatalf("%d of %d answered: the stop did not land mid-stream", len(answered), len(deliveries))
	}
	t.Logf("%d deliveries answered 200 before SIGTERM; stopped in %s", len(answered), took.Round(time.Millisecond))

	again, err := startChild(ctx, exe, dir, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer again.stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := again.counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n.Pending == 0 && n.Failed == 0 {
			if n.Dead != 0 || n.Processed < len(answered) {
				t.Fatalf("after restart: %+v, want every one of the %d answered deliveries processed", n, len(answered))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %+v 60s after the restart", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for id := range answered {
		if status, err := again.statusByWebhookID(ctx, id); err != nil || status != "processed" {
			t.Fatalf("delivery %s answered 200 before SIGTERM: %q %v", id, status, err)
		}
	}
	orders, err := again.total(ctx, "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := again.total(ctx, "webhook_inbox", "")
	if err != nil {
		t.Fatal(err)
	}
	if orders != inbox {
		t.Errorf("%d orders from %d stored deliveries of distinct orders: something was lost or doubled", orders, inbox)
	}
}
