package benchmark

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers of the end-to-end tests against the real binary (crash_*_test.go,
// diskfull_test.go): calls to the child's API as its superuser, paged record lists,
// jobs run by hand, and polling with a deadline.

// call sends a JSON body (nil for none) to the child's API as its superuser and
// returns the status and the whole answer.
func (c *child) call(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", c.token)
	res, err := c.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// mustCall is call that insists on the status want and decodes the answer into out
// (when out is not nil).
func (c *child) mustCall(t *testing.T, ctx context.Context, method, path string, body any, want int, out any) {
	t.Helper()
	status, answer, err := c.call(ctx, method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, answer)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, answer, err)
		}
	}
}

// list reads every record of a collection matching filter ("" for all), page by page,
// into out (a pointer to a slice of structs with json tags).
func (c *child) list(ctx context.Context, collection, filter string, out any) error {
	var all []json.RawMessage
	for page := 1; ; page++ {
		q := url.Values{}
		if filter != "" {
			q.Set("filter", filter)
		}
		q.Set("perPage", "500")
		q.Set("page", fmt.Sprint(page))
		q.Set("skipTotal", "1")
		q.Set("sort", "created,id")
		status, body, err := c.call(ctx, http.MethodGet, "/api/collections/"+collection+"/records?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("list %s: status %d: %s", collection, status, body)
		}
		var res struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &res); err != nil {
			return fmt.Errorf("list %s: %w", collection, err)
		}
		all = append(all, res.Items...)
		if len(res.Items) < 500 {
			break
		}
	}
	b, _ := json.Marshal(all)
	return json.Unmarshal(b, out)
}

// mustList is list that fails the test on an error.
func (c *child) mustList(t *testing.T, ctx context.Context, collection, filter string, out any) {
	t.Helper()
	if err := c.list(ctx, collection, filter, out); err != nil {
		t.Fatal(err)
	}
}

// jobRun is a run of a job as POST /api/ops/jobs/{name}/run answers it and as
// monitoring_runs stores it.
type jobRun struct {
	ID      string         `json:"id"`
	Name    string         `json:"name"`
	Outcome string         `json:"outcome"`
	Trigger string         `json:"trigger"`
	Summary string         `json:"summary"`
	Error   string         `json:"error"`
	Figures map[string]any `json:"figures"`
}

// figure reads a numeric figure of a run (0 when absent).
func (r jobRun) figure(name string) int {
	if v, ok := r.Figures[name].(float64); ok {
		return int(v)
	}
	return 0
}

// runJob runs a job now through the API and waits for its answer; a run already
// going (409, e.g. the one at start) is waited out and the job asked again.
func (c *child) runJob(ctx context.Context, name string, limit time.Duration) (jobRun, error) {
	deadline := time.Now().Add(limit)
	for {
		status, body, err := c.call(ctx, http.MethodPost, "/api/ops/jobs/"+name+"/run", nil)
		if err != nil {
			return jobRun{}, err
		}
		switch status {
		case http.StatusOK:
			var run jobRun
			err := json.Unmarshal(body, &run)
			return run, err
		case http.StatusConflict:
			if time.Now().After(deadline) {
				return jobRun{}, fmt.Errorf("job %s still running after %s", name, limit)
			}
			if err := pause(ctx, c, 100*time.Millisecond); err != nil {
				return jobRun{}, err
			}
		default:
			return jobRun{}, fmt.Errorf("run job %s: status %d: %s", name, status, body)
		}
	}
}

// mustRunJob is runJob that fails the test unless the run's outcome is ok.
func (c *child) mustRunJob(t *testing.T, ctx context.Context, name string) jobRun {
	t.Helper()
	run, err := c.runJob(ctx, name, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if run.Outcome != "ok" {
		t.Fatalf("job %s: outcome %s (%s; %s)", name, run.Outcome, run.Summary, run.Error)
	}
	return run
}

// jobRanIdle waits until the job has run at least once in this data dir and no run of
// it is going: the run at start of a RunAtStart job has finished.
func (c *child) jobRanIdle(ctx context.Context, name string, limit time.Duration) error {
	return waitUntil(ctx, c, limit, "job "+name+" ran and idle", func() (bool, error) {
		var list struct {
			Jobs []struct {
				Name    string  `json:"name"`
				Running bool    `json:"running"`
				LastRun *jobRun `json:"last_run"`
			} `json:"jobs"`
		}
		status, body, err := c.call(ctx, http.MethodGet, "/api/ops/jobs", nil)
		if err != nil || status != http.StatusOK {
			return false, fmt.Errorf("list jobs: %d %v", status, err)
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return false, err
		}
		for _, j := range list.Jobs {
			if j.Name == name {
				return !j.Running && j.LastRun != nil && j.LastRun.Outcome != "running", nil
			}
		}
		return false, fmt.Errorf("no job %s in GET /api/ops/jobs", name)
	})
}

// pause waits d, or returns early with an error when ctx ends or the child exits.
func pause(ctx context.Context, c *child, d time.Duration) error {
	var exited <-chan struct{}
	if c != nil {
		exited = c.exited
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-exited:
		return fmt.Errorf("opspine serve exited (%v):\n%s", c.waitErr, c.logTail())
	case <-time.After(d):
		return nil
	}
}

// waitUntil polls cond every 50 ms until it holds, fails, the child exits (c may be
// nil) or limit passes.
func waitUntil(ctx context.Context, c *child, limit time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		ok, err := cond()
		if ok && err == nil {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("%s: not within %s: %w", what, limit, last)
			}
			return fmt.Errorf("%s: not within %s", what, limit)
		}
		if err := pause(ctx, c, 50*time.Millisecond); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// createProduct adds a batch-tracked product with a shelf life, as staff would.
func (c *child) createProduct(t *testing.T, ctx context.Context, sku string, shelfLifeDays int) string {
	t.Helper()
	var rec struct {
		ID string `json:"id"`
	}
	c.mustCall(t, ctx, http.MethodPost, "/api/collections/products/records", map[string]any{
		"sku": sku, "name": "E2E " + sku, "active": true, "unit": "pouch", "shelf_life_days": shelfLifeDays,
	}, http.StatusOK, &rec)
	return rec.ID
}

// createdBatch is the answer of POST /api/ops/batches.
type createdBatch struct {
	ID            string `json:"id"`
	Code          string `json:"code"`
	Status        string `json:"status"`
	CopackerEmail *struct {
		ID string `json:"id"`
	} `json:"copacker_email"`
}

// createBatch makes a batch on QA hold through POST /api/ops/batches.
func (c *child) createBatch(t *testing.T, ctx context.Context, sku string, units int, expiry time.Time) createdBatch {
	t.Helper()
	body := map[string]any{"product_sku": sku, "produced_at": time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), "units": units}
	if !expiry.IsZero() {
		body["expiry_date"] = expiry.Format("2006-01-02")
	}
	var b createdBatch
	c.mustCall(t, ctx, http.MethodPost, "/api/ops/batches", body, http.StatusCreated, &b)
	return b
}

// releaseBatch records a passing lab result for a batch on hold, which releases it.
func (c *child) releaseBatch(t *testing.T, ctx context.Context, batchID string) {
	t.Helper()
	var answer struct {
		Batch struct {
			Status string `json:"status"`
		} `json:"batch"`
	}
	c.mustCall(t, ctx, http.MethodPost, "/api/ops/batches/"+batchID+"/lab-results", map[string]any{
		"lab": "Eurofins Wolverhampton", "salmonella": "absent", "listeria": "absent",
		"enterobacteriaceae_cfu_per_g": 120, "reported_at": time.Now().UTC().Format("2006-01-02"),
	}, http.StatusCreated, &answer)
	if answer.Batch.Status != "released" {
		t.Fatalf("lab result left batch %s %s, want released", batchID, answer.Batch.Status)
	}
}

// pbFilterQuote quotes a value for a PocketBase filter.
func pbFilterQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// resender streams deliveries from 8 connections at about 250 a second, keeping those
// not answered 200 to send again, as Shopify retries them: 250 a second is under the
// default webhook rate limit, so writes go on all the time rather than in bursts
// between 429s, and a kill lands while deliveries are being stored.
type resender struct {
	mu       sync.Mutex
	all      []delivery
	next     int             // the next never-sent delivery
	retry    []delivery      // sent but not answered 200
	answered map[string]bool // webhook id → answered 200 by some instance
	refused  map[int]int     // non-200 answers by status (0: no answer, the server went)
	resent   int             // resends that were answered 200
}

func newResender(all []delivery) *resender {
	return &resender{all: all, answered: map[string]bool{}, refused: map[int]int{}}
}

// take returns the next delivery to send: a retry first, then a new one unless
// onlyRetries; again says it is a retry.
func (r *resender) take(onlyRetries bool) (d delivery, again, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.retry); n > 0 {
		d = r.retry[n-1]
		r.retry = r.retry[:n-1]
		return d, true, true
	}
	if onlyRetries || r.next == len(r.all) {
		return delivery{}, false, false
	}
	r.next++
	return r.all[r.next-1], false, true
}

// stream sends until the server goes or nothing is left; wait on the group.
func (r *resender) stream(ctx context.Context, t *testing.T, c *child, onlyRetries bool) *sync.WaitGroup {
	client := newClient(8)
	tick := time.NewTicker(time.Second / 250)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				<-tick.C
				d, again, ok := r.take(onlyRetries)
				if !ok {
					return
				}
				status, _, err := post(ctx, client, c.base, d)
				r.mu.Lock()
				if err == nil && status == http.StatusOK {
					if r.answered[d.webhookID] {
						t.Errorf("delivery %s answered 200 twice", d.webhookID)
					}
					r.answered[d.webhookID] = true
					if again {
						r.resent++
					}
				} else {
					r.retry = append(r.retry, d)
					r.refused[status]++
				}
				r.mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	go func() { wg.Wait(); tick.Stop() }()
	return &wg
}

// realBinary is what every test of the real binary starts from: bin/opspine built for
// the test, a fresh temp dir for its data, a random webhook secret and a context that
// ends after limit.
func realBinary(t *testing.T, limit time.Duration) (ctx context.Context, exe, dir, secret string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx, buildOpspine(t), t.TempDir(), randomHex(16)
}
