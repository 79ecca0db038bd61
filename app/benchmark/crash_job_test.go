package benchmark

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/app/testkit"
)

// stallingShopify is a proxy in front of testkit's fake Admin API that can hold one
// orders page request until the test lets go (after it has killed the client).
type stallingShopify struct {
	URL      string
	requests atomic.Int64
	stallAt  atomic.Int64 // the request number (from 1) to hold; 0: none
	stalled  chan int64
}

func startStallingShopify(t *testing.T, fake *testkit.ShopifyAdmin) *stallingShopify {
	t.Helper()
	target, err := url.Parse(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	s := &stallingShopify{stalled: make(chan int64, 4)}
	release := make(chan struct{})
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(res *http.Response) error { // the pages link to the proxy, not the fake
		if link := res.Header.Get("Link"); link != "" {
			res.Header.Set("Link", strings.ReplaceAll(link, fake.URL, s.URL))
		}
		return nil
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.requests.Add(1)
		if n == s.stallAt.Load() {
			s.stalled <- n
			<-release
			http.Error(w, `{"errors":"stalled by the test"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	s.URL = "http://" + srv.Listener.Addr().String() // before Start: the handler reads it
	srv.Start()
	t.Cleanup(func() { close(release); srv.Close() })
	return s
}

// shopRow is the bench shop as the records API shows it.
type shopRow struct {
	Domain         string `json:"domain"`
	OrdersSyncedAt string `json:"orders_synced_at"`
}

func (c *child) shop(t *testing.T, ctx context.Context) shopRow {
	t.Helper()
	var shops []shopRow
	c.mustList(t, ctx, "shops", "domain="+pbFilterQuote(benchShop), &shops)
	if len(shops) != 1 {
		t.Fatalf("%d shops %s", len(shops), benchShop)
	}
	return shops[0]
}

// SIGKILL during the shopify-reconcile job, while it waits for the third of four pages
// of orders (issue 7). The orders of the first two pages are stored and processed, the
// cursor has not moved. After the restart a run lists every page again: the orders
// already here are up to date and left alone, the others are created, each order
// exists exactly once, one reconcile delivery each, and only then does the cursor move.
func TestCrashSigkillDuringShopifyReconcileTakesEachOrderOnce(t *testing.T) {
	ctx, exe, dir, secret := realBinary(t, 2*time.Minute)
	const (
		token    = "shpat_e2e_reconcile"
		version  = "2025-10"
		pageSize = 25
		orders   = 4 * pageSize
	)
	fake := testkit.NewShopifyAdmin(t, token, version, pageSize)
	updated := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	for i := range orders {
		fake.Put(testkit.Order(testkit.WithOrderID(6_000_000_000_000_000+int64(i)),
			testkit.WithCustomer(8_000_000_000_000_000+int64(i), fmt.Sprintf("reconciled.%d@example.com", i)),
			testkit.WithStatus("pending", updated.Add(time.Duration(i)*time.Second))))
	}
	shopify := startStallingShopify(t, fake)
	env := []string{
		"OPSPINE_SHOPIFY_ADMIN_TOKEN=" + token, "OPSPINE_SHOPIFY_ADMIN_BASE_URL=" + shopify.URL,
		"OPSPINE_SHOPIFY_API_VERSION=" + version,
		"OPSPINE_SHOPIFY_RECONCILE_SCHEDULE=0 3 1 1 *", // only the runs the test asks for
	}
	const job = "shopify-reconcile"

	c1, err := startChild(ctx, exe, dir, secret, env...)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.kill()
	shopify.stallAt.Store(3)
	go c1.runJob(ctx, job, time.Minute) // answers only once the process is gone
	select {
	case <-shopify.stalled:
	case <-c1.exited:
		t.Fatalf("opspine exited: %v\n%s", c1.waitErr, c1.logTail())
	case <-time.After(30 * time.Second):
		t.Fatalf("the reconcile run never asked for page 3:\n%s", c1.logTail())
	}
	got, err := c1.total(ctx, "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	if got != 2*pageSize {
		t.Fatalf("%d orders while page 3 is awaited, want the %d of pages 1 and 2", got, 2*pageSize)
	}
	c1.kill()

	c2, err := startChild(ctx, exe, dir, secret, env...)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.stop()
	if s := c2.shop(t, ctx); s.OrdersSyncedAt != "" {
		t.Fatalf("the cursor moved to %s in a run killed before its last page", s.OrdersSyncedAt)
	}
	if got, err := c2.total(ctx, "orders", ""); err != nil || got != 2*pageSize {
		t.Fatalf("after the restart %d orders (%v), want %d", got, err, 2*pageSize)
	}
	began := time.Now().UTC()
	run := c2.mustRunJob(t, ctx, job)
	if run.figure("pages") != 4 || run.figure("fetched") != orders || run.figure("missing") != orders-2*pageSize ||
		run.figure("up_to_date") != 2*pageSize || run.figure("failed") != 0 {
		t.Fatalf("the run after the restart: %s %v; want 4 pages, %d fetched, %d missing, %d up to date",
			run.Summary, run.Figures, orders, orders-2*pageSize, 2*pageSize)
	}
	cursor, err := time.Parse(pbDate, c2.shop(t, ctx).OrdersSyncedAt)
	if err != nil {
		t.Fatalf("cursor after a complete run: %v", err)
	}
	if want := began.Add(-ingest.ReconcileOverlap); cursor.Before(want.Add(-time.Second)) || cursor.After(time.Now().UTC()) {
		t.Fatalf("cursor %s after a complete run begun at %s, want its start less the %s overlap", cursor, began, ingest.ReconcileOverlap)
	}
	// Each order once, from one reconcile delivery each, processed.
	var rows []struct {
		ShopifyOrderID string `json:"shopify_order_id"`
	}
	c2.mustList(t, ctx, "orders", "", &rows)
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.ShopifyOrderID]++
	}
	for i := range orders {
		if id := fmt.Sprint(6_000_000_000_000_000 + int64(i)); seen[id] != 1 {
			t.Errorf("order %s exists %d times, want once", id, seen[id])
		}
	}
	if len(rows) != orders {
		t.Errorf("%d orders, want %d", len(rows), orders)
	}
	var inbox []struct {
		Source string `json:"source"`
		Status string `json:"status"`
	}
	c2.mustList(t, ctx, "webhook_inbox", "", &inbox)
	for _, r := range inbox {
		if r.Source != ingest.SourceReconcile || r.Status != "processed" {
			t.Errorf("inbox row %+v, want processed reconcile deliveries only", r)
			break
		}
	}
	if len(inbox) != orders {
		t.Errorf("%d inbox rows for %d orders: an order was stored twice", len(inbox), orders)
	}
	var runs []jobRun
	c2.mustList(t, ctx, "monitoring_runs", "name='"+job+"'", &runs)
	t.Logf("killed while page 3 of 4 was awaited with %d orders in; after the restart one run: %s; cursor %s; %d orders, %d inbox rows; %d runs recorded (%s first)",
		2*pageSize, run.Summary, cursor.Format(time.RFC3339), len(rows), len(inbox), len(runs), runs[0].Outcome)
}

// paidDeliveries builds n signed deliveries of distinct paid orders (each two units of
// PR-BEEF-2KG and one of PR-WINGS-1KG, the fixture's lines).
func paidDeliveries(run string, n int, secret string) []delivery {
	out := make([]delivery, n)
	paidAt := time.Now().UTC().Add(-time.Minute)
	for i := range out {
		k := int64(i)
		body := testkit.Order(
			testkit.WithOrderID(4_000_000_000_000_000+k),
			testkit.WithCustomer(3_000_000_000_000_000+k, fmt.Sprintf("payer.%d@example.com", k)),
			testkit.WithStatus("paid", paidAt),
		).JSON()
		out[i] = delivery{webhookID: fmt.Sprintf("paid-%s-%d", run, k), body: body, signature: ingest.SignShopifyBody(body, secret)}
	}
	return out
}

// SIGKILL twice while paid orders stream in and are allocated first expiry first out
// from released batches (issue 7). The orders want more than the stock, so some wait.
// After the last restart: the inventory-ledger check passes; each batch's allocated
// cache is the sum of its active allocations and never more than its on hand; every
// line holds exactly its quantity in allocations plus what it waits for, with no pair
// of line and batch allocated twice; all stock is allocated (demand exceeds it) and
// nothing more.
func TestCrashSigkillWhileAllocatingKeepsStockAddingUp(t *testing.T) {
	ctx, exe, dir, secret := realBinary(t, 3*time.Minute)

	c, err := startChild(ctx, exe, dir, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer c.kill()
	stock := map[string]int{}
	for _, p := range []struct {
		sku     string
		batches []int // units, in order of expiry
	}{{"PR-BEEF-2KG", []int{250, 250}}, {"PR-WINGS-1KG", []int{300}}} {
		c.createProduct(t, ctx, p.sku, 120)
		for i, units := range p.batches {
			b := c.createBatch(t, ctx, p.sku, units, time.Now().AddDate(0, 0, 60+30*i))
			c.releaseBatch(t, ctx, b.ID)
			stock[p.sku] += units
		}
	}
	// 2 beef and 1 wings an order: 800 beef and 400 wings wanted, 500 and 300 in stock
	r := newResender(paidDeliveries(randomHex(4), 400, secret))
	for i, after := range []time.Duration{500 * time.Millisecond, 900 * time.Millisecond} {
		if i > 0 {
			if c, err = startChild(ctx, exe, dir, secret); err != nil {
				t.Fatal(err)
			}
			defer c.kill()
		}
		wg := r.stream(ctx, t, c, false)
		if err := pause(ctx, c, after); err != nil {
			t.Fatal(err)
		}
		c.kill()
		wg.Wait()
		r.mu.Lock()
		answered, sent := len(r.answered), r.next
		r.mu.Unlock()
		if sent == len(r.all) {
			t.Fatalf("kill %d: every delivery was sent before the kill", i+1)
		}
		t.Logf("kill %d, %s after the stream began: %d answered 200 so far, %d sent", i+1, after, answered, sent)
	}
	last, err := startChild(ctx, exe, dir, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer last.stop()
	r.stream(ctx, t, last, false).Wait()
	if len(r.retry) != 0 || len(r.answered) != len(r.all) {
		t.Fatalf("%d of %d deliveries answered 200, %d waiting to be sent again", len(r.answered), len(r.all), len(r.retry))
	}
	for status, k := range r.refused {
		if status >= 500 {
			t.Errorf("%d sends answered %d: a live instance failed to store a delivery", k, status)
		}
	}
	n := waitProcessed(t, ctx, last, 60*time.Second)
	if n.Processed != len(r.all) || n.Dead != 0 {
		t.Fatalf("inbox %+v, want all %d deliveries processed", n, len(r.all))
	}

	ledger := last.mustRunJob(t, ctx, "monitor-inventory-ledger")
	if ledger.figure("mismatches") != 0 {
		t.Errorf("inventory ledger: %s", ledger.Summary)
	}
	var batches []struct {
		ID        string `json:"id"`
		Code      string `json:"code"`
		Product   string `json:"product"`
		Units     int    `json:"quantity_units"`
		OnHand    int    `json:"on_hand"`
		Allocated int    `json:"allocated"`
	}
	last.mustList(t, ctx, "batches", "", &batches)
	var allocations []struct {
		Batch     string `json:"batch"`
		OrderItem string `json:"order_item"`
		Quantity  int    `json:"quantity"`
		Status    string `json:"status"`
	}
	last.mustList(t, ctx, "allocations", "", &allocations)
	var waiting []struct {
		OrderItem string `json:"order_item"`
		Quantity  int    `json:"quantity"`
	}
	last.mustList(t, ctx, "allocation_queue", "state='pending'", &waiting)
	var items []struct {
		ID       string `json:"id"`
		SKU      string `json:"sku"`
		Quantity int    `json:"current_quantity"`
	}
	last.mustList(t, ctx, "order_items", "", &items)

	heldByBatch, heldByItem, waitingByItem := map[string]int{}, map[string]int{}, map[string]int{}
	pairs := map[string]int{}
	for _, a := range allocations {
		if a.Status != "allocated" {
			t.Errorf("allocation %+v: nothing was cancelled or dispatched, want allocated", a)
			continue
		}
		heldByBatch[a.Batch] += a.Quantity
		heldByItem[a.OrderItem] += a.Quantity
		pairs[a.OrderItem+"/"+a.Batch]++
	}
	for pair, k := range pairs {
		if k > 1 {
			t.Errorf("line/batch %s has %d allocation rows, want one", pair, k)
		}
	}
	for _, w := range waiting {
		waitingByItem[w.OrderItem] += w.Quantity
	}
	allocatedBySKU := map[string]int{}
	for _, b := range batches {
		if b.Allocated != heldByBatch[b.ID] || b.Allocated > b.OnHand || b.OnHand != b.Units {
			t.Errorf("batch %s: on hand %d of %d made, allocated %d, allocations hold %d", b.Code, b.OnHand, b.Units, b.Allocated, heldByBatch[b.ID])
		}
	}
	wanted := map[string]int{}
	for _, it := range items {
		if heldByItem[it.ID]+waitingByItem[it.ID] != it.Quantity {
			t.Errorf("line %s (%s): holds %d and waits for %d of %d", it.ID, it.SKU, heldByItem[it.ID], waitingByItem[it.ID], it.Quantity)
		}
		allocatedBySKU[it.SKU] += heldByItem[it.ID]
		wanted[it.SKU] += it.Quantity
	}
	if len(items) != 2*len(r.all) {
		t.Errorf("%d order lines from %d orders of two lines", len(items), len(r.all))
	}
	for sku, units := range stock {
		if allocatedBySKU[sku] != units || wanted[sku] <= units {
			t.Errorf("%s: %d units allocated of %d in stock, %d wanted; want all the stock allocated", sku, allocatedBySKU[sku], units, wanted[sku])
		}
	}
	waitingTotal := 0
	for _, w := range waiting {
		waitingTotal += w.Quantity
	}
	t.Logf("%d paid orders answered 200 (sends not answered 200, by status: %v), %d allocation rows, %d units allocated %v of %v wanted, %d units waiting on %d lines; ledger: %s",
		len(r.answered), r.refused, len(allocations), allocatedBySKU["PR-BEEF-2KG"]+allocatedBySKU["PR-WINGS-1KG"], allocatedBySKU, wanted,
		waitingTotal, len(waiting), ledger.Summary)
}
