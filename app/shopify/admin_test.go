package shopify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opspine/opspine/app/shopify"
	"github.com/opspine/opspine/app/testkit"
)

const (
	adminToken   = "shpat_test_admin_token_0123456789"
	adminVersion = "2025-10"
)

var now = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// newFakeAdmin starts a fake of the shop's Admin API that accepts adminToken on
// adminVersion, lists pageSize orders a page and holds orders.
func newFakeAdmin(t *testing.T, pageSize int, orders ...string) *testkit.ShopifyAdmin {
	f := testkit.NewShopifyAdmin(t, adminToken, adminVersion, pageSize)
	for _, o := range orders {
		f.PutJSON([]byte(o))
	}
	return f
}

// order is a REST order with an id beyond 2^53 and deliberately uneven spacing, so
// keeping its exact bytes shows.
func order(n int, updated time.Time) string {
	return fmt.Sprintf(`{"id":%d,  "name":"#%d", "total_price":"58.99",
	 "updated_at":%q}`, 9007199254740993+n, 1000+n, updated.Format(time.RFC3339))
}

// client returns a client of the shop at baseURL whose waits are recorded instead of slept.
func client(baseURL string, waits *[]time.Duration) *shopify.AdminClient {
	return &shopify.AdminClient{BaseURL: baseURL, Token: adminToken, APIVersion: adminVersion,
		HTTP: &http.Client{Timeout: 5 * time.Second},
		Sleep: func(ctx context.Context, d time.Duration) error {
			*waits = append(*waits, d)
			return ctx.Err()
		}}
}

func listAll(c *shopify.AdminClient, ctx context.Context, since time.Time) ([][]string, error) {
	var pages [][]string
	err := c.ListOrdersUpdatedSince(ctx, since, func(orders []json.RawMessage) error {
		page := make([]string, len(orders))
		for i, o := range orders {
			page[i] = string(o)
		}
		pages = append(pages, page)
		return nil
	})
	return pages, err
}

func TestListOrdersUpdatedSinceWalksEveryPageOldestUpdateFirst(t *testing.T) {
	var orders []string
	orders = append(orders, order(0, now.Add(-100*time.Hour))) // before the cursor: never listed
	for i := 1; i <= 5; i++ {
		orders = append(orders, order(i, now.Add(time.Duration(i-6)*time.Hour)))
	}
	f := newFakeAdmin(t, 2, orders...)
	var waits []time.Duration
	since := now.Add(-72 * time.Hour)

	pages, err := listAll(client(f.URL, &waits), context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{orders[1], orders[2]}, {orders[3], orders[4]}, {orders[5]}}
	if !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("pages (exact bytes):\n%q\nwant\n%q", pages, want)
	}
	reqs := f.TakeRequests()
	if len(reqs) != 3 || len(waits) != 0 {
		t.Fatalf("%d requests and waits %v, want 3 requests and no waits", len(reqs), waits)
	}
	first := reqs[0].Query()
	if got := first.Get("updated_at_min"); got != since.Format(time.RFC3339) {
		t.Errorf("updated_at_min = %q, want %q", got, since.Format(time.RFC3339))
	}
	if !strings.Contains(reqs[0].RawQuery, "order=updated_at+asc") {
		t.Errorf("first query %q does not ask for updated_at+asc", reqs[0].RawQuery)
	}
	for _, r := range reqs[1:] {
		if q := r.Query(); len(q) != 2 || q.Get("page_info") == "" {
			t.Errorf("follow-up query %q: want only limit and page_info, as in the Link header", r.RawQuery)
		}
	}
}

func TestListOrdersUpdatedSinceRetriesRateLimitsAndServerErrors(t *testing.T) {
	tests := []struct {
		name        string
		canned      []testkit.ShopifyAnswer
		wantWaits   []time.Duration
		wantStatus  int // 0: the listing succeeds
		rateLimited int
		serverErrs  int
	}{
		{"429 with a fractional Retry-After", []testkit.ShopifyAnswer{{Status: 429, RetryAfter: "0.05"}}, []time.Duration{50 * time.Millisecond}, 0, 1, 0},
		{"429 with Retry-After 2.0", []testkit.ShopifyAnswer{{Status: 429, RetryAfter: "2.0"}}, []time.Duration{2 * time.Second}, 0, 1, 0},
		{"429 with a huge Retry-After is capped", []testkit.ShopifyAnswer{{Status: 429, RetryAfter: "3600"}}, []time.Duration{time.Minute}, 0, 1, 0},
		{"429 without Retry-After waits the default", []testkit.ShopifyAnswer{{Status: 429}}, []time.Duration{2 * time.Second}, 0, 1, 0},
		{"500 once", []testkit.ShopifyAnswer{{Status: 500}}, []time.Duration{500 * time.Millisecond}, 0, 0, 1},
		{"5xx backs off exponentially", []testkit.ShopifyAnswer{{Status: 500}, {Status: 502}, {Status: 503}},
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}, 0, 0, 3},
		{"5xx gives up after four attempts", []testkit.ShopifyAnswer{{Status: 500}, {Status: 500}, {Status: 500}, {Status: 503}},
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}, 503, 0, 4},
		{"429 gives up after eight attempts", slices.Repeat([]testkit.ShopifyAnswer{{Status: 429, RetryAfter: "0.05"}}, 8),
			slices.Repeat([]time.Duration{50 * time.Millisecond}, 7), 429, 8, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAdmin(t, 2, order(1, now.Add(-time.Hour)), order(2, now.Add(-time.Minute)))
			f.QueueAnswers(tc.canned...)
			var waits []time.Duration
			var stats shopify.CallStats
			pages, err := listAll(client(f.URL, &waits), shopify.WithCallStats(context.Background(), &stats), now.Add(-72*time.Hour))

			if !slices.Equal(waits, tc.wantWaits) {
				t.Errorf("waits %v, want %v", waits, tc.wantWaits)
			}
			if stats.RateLimited != tc.rateLimited || stats.ServerErrors != tc.serverErrs {
				t.Errorf("stats %+v, want %d rate limited and %d server errors", stats, tc.rateLimited, tc.serverErrs)
			}
			if tc.wantStatus == 0 {
				if err != nil || len(pages) != 1 || len(pages[0]) != 2 {
					t.Fatalf("got pages %q, err %v; want both orders on one page", pages, err)
				}
				return
			}
			var apiErr *shopify.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.wantStatus {
				t.Fatalf("err %v, want an APIError with status %d", err, tc.wantStatus)
			}
			if len(pages) != 0 {
				t.Errorf("pages %q handed over from a failed request", pages)
			}
		})
	}
}

func TestListOrdersUpdatedSinceFailsClearlyWithoutRetryOrToken(t *testing.T) {
	tests := []struct {
		name       string
		token      string
		version    string
		canned     []testkit.ShopifyAnswer
		wantStatus int
		wantHint   string
	}{
		{"wrong token", "shpat_revoked_token_secret", adminVersion, nil, 401, "OPSPINE_SHOPIFY_ADMIN_TOKEN"},
		{"missing scope", adminToken, adminVersion, []testkit.ShopifyAnswer{{Status: 403}}, 403, "scope"},
		{"unknown API version", adminToken, "2019-01", nil, 404, "OPSPINE_SHOPIFY_API_VERSION"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAdmin(t, 2, order(1, now.Add(-time.Hour)))
			f.QueueAnswers(tc.canned...)
			var waits []time.Duration
			c := client(f.URL, &waits)
			c.Token, c.APIVersion = tc.token, tc.version

			_, err := listAll(c, context.Background(), now.Add(-time.Hour))
			var apiErr *shopify.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.wantStatus {
				t.Fatalf("err %v, want an APIError with status %d", err, tc.wantStatus)
			}
			if !strings.Contains(err.Error(), tc.wantHint) {
				t.Errorf("error %q does not say what to check (%s)", err, tc.wantHint)
			}
			if strings.Contains(err.Error(), tc.token) {
				t.Errorf("error %q contains the access token", err)
			}
			if n := len(f.TakeRequests()); n != 1 || len(waits) != 0 {
				t.Errorf("%d requests, waits %v: want one request and no retry", n, waits)
			}
		})
	}
}

func TestListOrdersUpdatedSinceStopsWhenTheContextEnds(t *testing.T) {
	f := newFakeAdmin(t, 2, order(1, now.Add(-time.Hour)))
	f.QueueAnswers(testkit.ShopifyAnswer{Status: 429, RetryAfter: "30"})
	c := &shopify.AdminClient{BaseURL: f.URL, Token: adminToken, APIVersion: adminVersion} // real sleep, default HTTP
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()

	started := time.Now()
	_, err := listAll(c, ctx, now.Add(-time.Hour))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	if waited := time.Since(started); waited > 5*time.Second {
		t.Errorf("returned after %s, want soon after the context ended", waited)
	}
}

func TestListOrdersUpdatedSinceSendsTheTokenOnlyToTheShop(t *testing.T) {
	var elsewhere []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere = append(elsewhere, r.Header.Get("X-Shopify-Access-Token"))
		fmt.Fprint(w, `{"orders":[]}`)
	}))
	defer other.Close()
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", fmt.Sprintf(`<%s/admin/api/%s/orders.json?limit=250&page_info=x>; rel="next"`, other.URL, adminVersion))
		fmt.Fprint(w, `{"orders":[{"id":1}]}`)
	}))
	defer shop.Close()
	var waits []time.Duration
	c := client(shop.URL, &waits)

	pages, err := listAll(c, context.Background(), now)
	if err == nil || !strings.Contains(err.Error(), "not the shop's") {
		t.Fatalf("err %v, want a refusal to follow a link to another host", err)
	}
	if len(pages) != 1 || len(elsewhere) != 0 {
		t.Errorf("%d pages read, %d requests to the other host; want 1 and 0", len(pages), len(elsewhere))
	}
}

func TestListOrdersUpdatedSinceStopsAtThePageHandlersError(t *testing.T) {
	f := newFakeAdmin(t, 1, order(1, now.Add(-2*time.Hour)), order(2, now.Add(-time.Hour)))
	var waits []time.Duration
	stop := errors.New("database is gone")

	err := client(f.URL, &waits).ListOrdersUpdatedSince(context.Background(), now.Add(-3*time.Hour), func([]json.RawMessage) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err %v, want the handler's error", err)
	}
	if n := len(f.TakeRequests()); n != 1 {
		t.Errorf("%d requests, want 1: no page is fetched after the handler fails", n)
	}
}

func TestListOrdersUpdatedSinceStopsWhenTheNextLinkRepeatsAPage(t *testing.T) {
	requests := 0
	var shop *httptest.Server
	shop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		page := "a"
		if r.URL.Query().Get("page_info") == "a" {
			page = "b"
		}
		w.Header().Set("Link", fmt.Sprintf(`<%s/admin/api/%s/orders.json?limit=250&page_info=%s>; rel="next"`, shop.URL, adminVersion, page))
		fmt.Fprintf(w, `{"orders":[{"id":%d}]}`, requests)
	}))
	defer shop.Close()
	var waits []time.Duration
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pages, err := listAll(client(shop.URL, &waits), ctx, now)
	if err == nil || !strings.Contains(err.Error(), "repeats a page") {
		t.Fatalf("err %v, want a refusal to follow a link in a loop", err)
	}
	if len(pages) != 3 || requests != 3 {
		t.Errorf("%d pages read in %d requests; want 3 (first, a, b) before the link goes back to a", len(pages), requests)
	}
}

func TestListOrdersUpdatedSinceRefusesAnAnswerOverTheLimit(t *testing.T) {
	defer func(old int64) { shopify.MaxPageBytes = old }(shopify.MaxPageBytes)
	shopify.MaxPageBytes = 1 << 20
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"orders":[{"id":1,"note":%q}]}`, strings.Repeat("x", 2<<20))
	}))
	defer shop.Close()
	var waits []time.Duration
	pages, err := listAll(client(shop.URL, &waits), context.Background(), now)
	if err == nil || !strings.Contains(err.Error(), "over 1 MB") {
		t.Fatalf("err %v, want the oversized answer refused", err)
	}
	if len(pages) != 0 {
		t.Errorf("%d pages handed on from an oversized answer", len(pages))
	}
}
