package benchmark

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/app/shopify/examples"
)

// delivery is one signed orders/create webhook, built before the clock starts so the
// load generator spends its CPU on sending, not on JSON and HMAC.
type delivery struct {
	webhookID string
	body      []byte
	signature string
}

// makeDeliveries builds n deliveries of distinct orders (and distinct customers),
// numbered from first; run keeps webhook ids unique across runs.
func makeDeliveries(run string, first, n int, secret string) []delivery {
	out := make([]delivery, n)
	for i := range out {
		k := int64(first + i)
		body := examples.Order(examples.WithOrderID(5_000_000_000_000_000+k),
			examples.WithCustomer(7_000_000_000_000_000+k, fmt.Sprintf("buyer.%d@example.com", k))).JSON()
		out[i] = delivery{webhookID: fmt.Sprintf("bench-%s-%d", run, k), body: body, signature: ingest.SignShopifyBody(body, secret)}
	}
	return out
}

// skusOf lists the distinct SKUs of the deliveries' line items.
func skusOf(ds []delivery) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, d := range ds {
		var o struct {
			LineItems []struct {
				SKU string `json:"sku"`
			} `json:"line_items"`
		}
		if err := json.Unmarshal(d.body, &o); err != nil {
			return nil, fmt.Errorf("read SKUs of %s: %w", d.webhookID, err)
		}
		for _, l := range o.LineItems {
			if l.SKU != "" && !seen[l.SKU] {
				seen[l.SKU] = true
				out = append(out, l.SKU)
			}
		}
	}
	return out, nil
}

func payloadsOf(ds []delivery) [][]byte {
	out := make([][]byte, len(ds))
	for i, d := range ds {
		out[i] = d.body
	}
	return out
}

// newClient is a keep-alive client with room for conns idle connections to the server.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// post sends d as Shopify would, reads the whole answer and returns the inbox id it
// names (the webhook answers {"id": ..., "duplicate": ...}).
func post(ctx context.Context, client *http.Client, base string, d delivery) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/webhooks/shopify", bytes.NewReader(d.body))
	if err != nil {
		return 0, "", err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("X-Shopify-Topic", "orders/create")
	h.Set("X-Shopify-Shop-Domain", benchShop)
	h.Set("X-Shopify-Webhook-Id", d.webhookID)
	h.Set("X-Shopify-Event-Id", "ev-"+d.webhookID)
	h.Set("X-Shopify-Api-Version", "2025-10")
	h.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
	h.Set("X-Shopify-Hmac-Sha256", d.signature)
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	var answer struct {
		ID string `json:"id"`
	}
	if err == nil && res.StatusCode == http.StatusOK {
		err = json.Unmarshal(body, &answer)
	}
	return res.StatusCode, answer.ID, err
}

// answers collects what the server answered.
type answers struct {
	mu        sync.Mutex
	latencies []time.Duration
	ok        int
	other     map[int]int // status code → count
	errors    int
	lastErr   error
	// lastID is the inbox id in the answer that came last.
	lastID string
}

func (a *answers) add(status int, id string, err error, took time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.latencies = append(a.latencies, took)
	if id != "" {
		a.lastID = id
	}
	switch {
	case err != nil:
		a.errors++
		a.lastErr = err
	case status == http.StatusOK:
		a.ok++
	default:
		if a.other == nil {
			a.other = map[int]int{}
		}
		a.other[status]++
	}
}

// Answers summarises one phase's answers.
type Answers struct {
	Sent      int
	OK        int
	Other     map[int]int
	Errors    int
	LastError string
	P50, P99  time.Duration
	Max       time.Duration
}

func (a *answers) summary() Answers {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Answers{Sent: len(a.latencies), OK: a.ok, Other: a.other, Errors: a.errors}
	if a.lastErr != nil {
		s.LastError = a.lastErr.Error()
	}
	sorted := slices.Clone(a.latencies)
	slices.Sort(sorted)
	s.P50, s.P99 = percentile(sorted, 50), percentile(sorted, 99)
	if len(sorted) > 0 {
		s.Max = sorted[len(sorted)-1]
	}
	return s
}

// percentile of sorted values, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// request is one request of a phase: the i-th delivery posted, or a GET; it returns
// the status and the id the answer names, if any.
type request func(ctx context.Context, i int) (status int, id string, err error)

// postEach posts the deliveries, the i-th request sending ds[i].
func postEach(client *http.Client, base string, ds []delivery) request {
	return func(ctx context.Context, i int) (int, string, error) { return post(ctx, client, base, ds[i]) }
}

// sendClosed sends n requests from conns workers, each waiting for its answer before
// the next send, as fast as the server answers.
func sendClosed(ctx context.Context, n, conns int, send request) *answers {
	a := &answers{latencies: make([]time.Duration, 0, n)}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				start := time.Now()
				status, id, err := send(ctx, i)
				a.add(status, id, err, time.Since(start))
			}
		})
	}
	wg.Wait()
	return a
}

// sendOpen sends request i at start + i/perSecond whatever the earlier answers are
// doing (open loop), and times each answer from its scheduled send time, so a slow
// answer counts against every request that should have gone out meanwhile.
func sendOpen(ctx context.Context, n, perSecond int, send request) *answers {
	a := &answers{latencies: make([]time.Duration, 0, n)}
	interval := time.Second / time.Duration(perSecond)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		scheduled := start.Add(time.Duration(i) * interval)
		if wait := time.Until(scheduled); wait > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return a
			case <-time.After(wait):
			}
		}
		wg.Go(func() {
			status, id, err := send(ctx, i)
			a.add(status, id, err, time.Since(scheduled))
		})
	}
	wg.Wait()
	return a
}

// get fetches url and reads the whole answer; it needs a 200 with at least minBytes.
func get(ctx context.Context, client *http.Client, url string, minBytes int64) (int, error) {
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
	if err == nil && (res.StatusCode != http.StatusOK || n < minBytes) {
		err = fmt.Errorf("GET %s: answered %s with %d bytes", url, res.Status, n)
	}
	return res.StatusCode, err
}
