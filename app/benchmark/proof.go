package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/sqlstore"
	"github.com/opspine/opspine/hooks"
	_ "github.com/opspine/opspine/pb_migrations" // batches, lab_results, proof_page_events
)

// proofBenchPublicID names the released batch the bench requests.
const proofBenchPublicID = "benchproofpage000001"

// MeasureProofPage serves the public proof page from a fresh opspine database (one
// released batch with its lab results) on a real HTTP server on 127.0.0.1, the same
// routes and event recorder as `opspine serve`, and requests GET /proof/{public_id}
// open loop at rate requests per second for d: each request leaves at its scheduled
// time whatever the earlier ones are doing, and is timed from that time, so a stall
// counts against every request that should have left meanwhile. Every request must be
// answered 200 with the page, or MeasureProofPage returns an error.
func MeasureProofPage(rate int, d time.Duration) (p50, p99 time.Duration, err error) {
	if rate < 1 || d <= 0 {
		return 0, 0, fmt.Errorf("proof page: rate must be at least 1/s and the duration positive")
	}
	dir, err := os.MkdirTemp("", "opspine-bench-proof-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: dir})
	if err := app.Bootstrap(); err != nil {
		return 0, 0, fmt.Errorf("proof page: bootstrap: %w", err)
	}
	defer app.ResetBootstrapState()
	if err := app.RunAllMigrations(); err != nil {
		return 0, 0, fmt.Errorf("proof page: migrate: %w", err)
	}
	if err := seedProofBenchBatch(app); err != nil {
		return 0, 0, err
	}

	base, stop, err := serveProofPages(app)
	if err != nil {
		return 0, 0, err
	}
	defer stop()

	client := newClient(64)
	url := base + "/proof/" + proofBenchPublicID
	for range 50 { // warm the connections, the template and SQLite's page cache
		if _, err := getProofPage(context.Background(), client, url); err != nil {
			return 0, 0, fmt.Errorf("proof page: warm-up: %w", err)
		}
	}
	latencies, err := getProofOpen(client, url, rate, d)
	if err != nil {
		return 0, 0, err
	}
	slices.Sort(latencies)
	return percentile(latencies, 50), percentile(latencies, 99), nil
}

// seedProofBenchBatch writes a product and a released batch with a passing lab result.
func seedProofBenchBatch(app core.App) error {
	now := time.Now().UTC()
	product, err := sqlstore.Insert(app.DB(), "products", now, dbx.Params{
		"sku": "BENCH-1", "name": "Chicken Complete", "unit": "pouch", "storage_instructions": "Keep frozen at -18 °C or below",
	})
	if err != nil {
		return fmt.Errorf("proof page: seed product: %w", err)
	}
	batch, err := sqlstore.Insert(app.DB(), "batches", now, dbx.Params{
		"code": "B-" + now.Format("060102") + "-001", "product": product, "status": "released", "public_id": proofBenchPublicID,
		"produced_at": sqlstore.FormatTime(now.Add(-72 * time.Hour)), "expiry_date": sqlstore.FormatTime(now.Add(90 * 24 * time.Hour)),
	})
	if err != nil {
		return fmt.Errorf("proof page: seed batch: %w", err)
	}
	_, err = sqlstore.Insert(app.DB(), "lab_results", now, dbx.Params{
		"batch": batch, "lab": "Bench Lab", "salmonella": "absent", "listeria": "absent",
		"enterobacteriaceae_tested": true, "enterobacteriaceae_cfu_per_g": 40, "outcome": "pass",
		"other_tests": `[{"name":"Total viable count","result":12000,"unit":"cfu/g","limit":500000,"pass":true}]`,
		"reported_at": sqlstore.FormatTime(now.Add(-24 * time.Hour)),
	})
	if err != nil {
		return fmt.Errorf("proof page: seed lab result: %w", err)
	}
	return nil
}

// serveProofPages binds the proof routes on PocketBase's router (with its default
// middlewares) and serves them on a free loopback port. stop shuts the server down
// and writes the queued proof_page_events.
func serveProofPages(app core.App) (base string, stop func(), err error) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		return "", nil, err
	}
	cfg.BrandName = "opspine bench"
	router, err := apis.NewRouter(app)
	if err != nil {
		return "", nil, fmt.Errorf("proof page: router: %w", err)
	}
	pages := hooks.NewProofPages(app, cfg, time.Now)
	pages.Bind(router)
	mux, err := router.BuildMux()
	if err != nil {
		pages.Close()
		return "", nil, fmt.Errorf("proof page: mux: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pages.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		pages.Close()
	}, nil
}

// getProofOpen requests url at start + i/rate for d, each from its own goroutine, and
// returns every latency measured from the scheduled send time.
func getProofOpen(client *http.Client, url string, rate int, d time.Duration) ([]time.Duration, error) {
	n := int(d.Seconds() * float64(rate))
	if n < 1 {
		n = 1
	}
	interval := time.Second / time.Duration(rate)
	latencies := make([]time.Duration, n)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  int
		lastErr error
	)
	start := time.Now()
	for i := range n {
		scheduled := start.Add(time.Duration(i) * interval)
		if wait := time.Until(scheduled); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() {
			_, err := getProofPage(context.Background(), client, url)
			latencies[i] = time.Since(scheduled)
			if err != nil {
				mu.Lock()
				failed++
				lastErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		return nil, fmt.Errorf("proof page: %d of %d requests failed, the last with: %w", failed, n, lastErr)
	}
	return latencies, nil
}

// getProofPage fetches the page and reads all of it; anything but a 200 with a page is an error.
func getProofPage(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148")
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil {
		return res.StatusCode, err
	}
	if res.StatusCode != http.StatusOK || n < 1000 {
		return res.StatusCode, errors.New("proof page: answered " + res.Status + " with " + fmt.Sprint(n) + " bytes")
	}
	return res.StatusCode, nil
}
