package benchmark

import (
	"testing"
	"time"
)

// SIGKILL mid-stream, three times at different moments, on the same data dir: every
// delivery answered 200 is stored exactly once and ends processed after the last
// restart, and there is one order per stored delivery (nothing processed twice).
// Deliveries whose answer was lost to a kill are sent again to the next instance, as
// Shopify retries them, so a delivery stored just before a kill arrives twice.
func TestCrashSigkillMidStreamLosesNothingAndDoublesNothing(t *testing.T) {
	ctx, exe, dir, secret := realBinary(t, 3*time.Minute)

	r := newResender(makeDeliveries("sigkill-"+randomHex(4), 1, 5000, secret))
	for i, after := range []time.Duration{300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond} {
		c, err := startChild(ctx, exe, dir, secret)
		if err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
		r.mu.Lock()
		before, retries := len(r.answered), len(r.retry)
		r.mu.Unlock()
		wg := r.stream(ctx, t, c, false)
		time.Sleep(after)
		c.kill()
		wg.Wait()
		r.mu.Lock()
		got, lost, sent := len(r.answered)-before, len(r.retry), r.next
		r.mu.Unlock()
		if got == 0 || sent == len(r.all) {
			t.Fatalf("kill %d after %s: %d answered, %d of %d sent: the kill did not land mid-stream", i+1, after, got, sent, len(r.all))
		}
		t.Logf("kill %d, %s after the stream began: %d answered 200 by this instance (%d resends waiting before it), %d unanswered to resend; %d sent so far",
			i+1, after, got, retries, lost, sent)
	}

	last, err := startChild(ctx, exe, dir, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer last.stop()
	restarted := time.Now()
	r.stream(ctx, t, last, true).Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.retry) != 0 {
		t.Fatalf("%d deliveries still not answered 200 by the last instance", len(r.retry))
	}
	sent, answered := r.next, r.answered
	for status, k := range r.refused {
		if status >= 500 {
			t.Errorf("%d sends answered %d: a live instance failed to store a delivery", k, status)
		}
	}
	if len(answered) != sent {
		t.Fatalf("%d answered 200 of %d sent", len(answered), sent)
	}

	deadline := restarted.Add(60 * time.Second)
	var n inboxCounts
	for {
		n, err = last.counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n.Pending == 0 && n.Failed == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %+v 60s after the last restart", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	settled := time.Since(restarted)
	if n.Dead != 0 || n.Skipped != 0 || n.Processed != len(answered) {
		t.Fatalf("after the last restart: %+v, want all %d answered deliveries processed and nothing else", n, len(answered))
	}
	// Exactly one row each (statusByWebhookID insists on one), processed.
	for id := range answered {
		if status, err := last.statusByWebhookID(ctx, id); err != nil || status != "processed" {
			t.Fatalf("delivery %s answered 200: %q %v", id, status, err)
		}
	}
	orders, err := last.total(ctx, "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := last.total(ctx, "webhook_inbox", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after 3 SIGKILLs: %d deliveries sent, %d answered 200 (%d of them on a resend; sends not answered 200, by status: %v), inbox %+v (%d rows), %d orders; settled %s after the last restart",
		sent, len(answered), r.resent, r.refused, n, inbox, orders, settled.Round(time.Millisecond))
	if inbox != len(answered) {
		t.Errorf("%d inbox rows for %d distinct answered deliveries: something was lost or stored twice", inbox, len(answered))
	}
	if orders != inbox {
		t.Errorf("%d orders from %d stored deliveries of distinct orders: something was lost or processed twice", orders, inbox)
	}
}
