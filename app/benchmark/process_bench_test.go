package benchmark

import (
	"net/http"
	"testing"
	"time"

	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/app/retry"
	"github.com/opspine/opspine/app/testkit"
)

// These benchmarks split the webhook path into its two halves, in-process and without
// HTTP, so a CPU profile shows where each spends its time:
//
//	go test -run '^$' -bench . -benchtime 3000x -cpuprofile cpu.out ./app/benchmark/
//	go tool pprof -top -cum cpu.out
//
// They print ns/op only; `opspine bench` is where figures meet their targets.

// benchDeliveries are committed-ready deliveries of distinct orders on the test shop.
func benchDeliveries(b *testing.B, n int) []ingest.Delivery {
	b.Helper()
	ds := makeDeliveries("process", 0, n, testkit.Secret)
	out := make([]ingest.Delivery, n)
	for i, d := range ds {
		h := http.Header{}
		h.Set("X-Shopify-Topic", "orders/create")
		h.Set("X-Shopify-Shop-Domain", testkit.Shop)
		h.Set("X-Shopify-Webhook-Id", d.webhookID)
		out[i] = ingest.DeliveryFromRequest(h, d.body)
	}
	return out
}

func benchProcessor(b *testing.B) *ingest.Processor {
	b.Helper()
	app := testkit.NewApp(b)
	if err := ingest.EnsureShop(app, testkit.Shop, []string{testkit.Secret}, ""); err != nil {
		b.Fatal(err)
	}
	return &ingest.Processor{App: app, MaxAttempts: 8, Backoff: retry.Backoff{Base: time.Second, Max: time.Minute}}
}

// BenchmarkStoreDelivery is the answer path's commit: one INSERT into webhook_inbox.
func BenchmarkStoreDelivery(b *testing.B) {
	proc := benchProcessor(b)
	ds := benchDeliveries(b, b.N)
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := ingest.StoreDelivery(proc.App.DB(), ds[i], time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcessOrder is the pipeline's work per orders/create delivery: customer,
// order, line items, ops event and the inbox row marked processed, in one transaction.
func BenchmarkProcessOrder(b *testing.B) {
	proc := benchProcessor(b)
	ds := benchDeliveries(b, b.N)
	ids := make([]string, b.N)
	for i := range b.N {
		id, _, err := ingest.StoreDelivery(proc.App.DB(), ds[i], time.Now())
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = id
	}
	b.ResetTimer()
	for _, id := range ids {
		res, err := proc.Process(id)
		if err != nil || res.Status != ingest.StatusProcessed {
			b.Fatalf("process %s: %+v, %v", id, res, err)
		}
	}
}
