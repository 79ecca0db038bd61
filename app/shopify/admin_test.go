package shopify_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opspine/opspine/app/shopify"
)

const (
	adminToken   = "shpat_test_admin_token_0123456789"
	adminVersion = "2025-10"
)

var now = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// fakeAdmin is a stand-in for one shop's Admin REST API orders endpoint: it checks the
// token and the API version, filters by updated_at_min, pages with Link rel="next"
// (page_info requests accept only limit, as Shopify's do), and gives canned answers
// (429, 5xx, 403) to the first requests when told to.
type fakeAdmin struct {
	t        *testing.T
	pageSize int
	srv      *httptest.Server

	mu       sync.Mutex
	orders   []fakeOrder // oldest update first
	canned   []canned
	requests []url.URL
}

type fakeOrder struct {
	updated time.Time
	body    string // served byte for byte
}

type canned struct {
	status     int
	retryAfter string
}

func newFakeAdmin(t *testing.T, pageSize int, orders ...fakeOrder) *fakeAdmin {
	f := &fakeAdmin{t: t, pageSize: pageSize, orders: orders}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAdmin) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, *r.URL)
	w.Header().Set("Content-Type", "application/json")
	if got := r.Header.Get("X-Shopify-Access-Token"); got != adminToken {
		// Echo what was sent, as a careless proxy might: the client must not repeat it.
		http.Error(w, fmt.Sprintf(`{"errors":"[API] Invalid API key or access token %s"}`, got), http.StatusUnauthorized)
		return
	}
	if r.URL.Path != "/admin/api/"+adminVersion+"/orders.json" {
		http.Error(w, `{"errors":"Not Found"}`, http.StatusNotFound)
		return
	}
	if len(f.canned) > 0 {
		c := f.canned[0]
		f.canned = f.canned[1:]
		if c.retryAfter != "" {
			w.Header().Set("Retry-After", c.retryAfter)
		}
		http.Error(w, fmt.Sprintf(`{"errors":"canned %d"}`, c.status), c.status)
		return
	}
	since, offset, err := f.cursor(r.URL.Query())
	if err != nil {
		http.Error(w, fmt.Sprintf(`{"errors":%q}`, err.Error()), http.StatusBadRequest)
		return
	}
	var matching []string
	for _, o := range f.orders {
		if !o.updated.Before(since) {
			matching = append(matching, o.body)
		}
	}
	end := min(offset+f.pageSize, len(matching))
	var links []string
	if offset > 0 {
		links = append(links, fmt.Sprintf(`<%s>; rel="previous"`, f.pageURL(since, max(0, offset-f.pageSize))))
	}
	if end < len(matching) {
		links = append(links, fmt.Sprintf(`<%s>; rel="next"`, f.pageURL(since, end)))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	fmt.Fprintf(w, `{"orders":[%s]}`, strings.Join(matching[offset:end], ","))
}

// cursor reads where a request starts: the first page's filters or a page_info.
func (f *fakeAdmin) cursor(q url.Values) (time.Time, int, error) {
	if pi := q.Get("page_info"); pi != "" {
		for k := range q {
			if k != "page_info" && k != "limit" {
				return time.Time{}, 0, fmt.Errorf("page_info requests accept no %s parameter", k)
			}
		}
		raw, err := base64.RawURLEncoding.DecodeString(pi)
		if err != nil {
			return time.Time{}, 0, errors.New("invalid page_info")
		}
		unix, off, _ := strings.Cut(string(raw), "|")
		secs, _ := strconv.ParseInt(unix, 10, 64)
		n, _ := strconv.Atoi(off)
		return time.Unix(secs, 0).UTC(), n, nil
	}
	if q.Get("status") != "any" || q.Get("limit") != "250" || q.Get("order") != "updated_at asc" {
		return time.Time{}, 0, fmt.Errorf("unexpected filters %s", q.Encode())
	}
	since, err := time.Parse(time.RFC3339, q.Get("updated_at_min"))
	return since, 0, err
}

func (f *fakeAdmin) pageURL(since time.Time, offset int) string {
	pi := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d|%d", since.Unix(), offset))
	return f.srv.URL + "/admin/api/" + adminVersion + "/orders.json?limit=250&page_info=" + pi
}

func (f *fakeAdmin) requestLog() []url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// order is a REST order with an id beyond 2^53 and deliberately uneven spacing, so
// keeping its exact bytes shows.
func order(n int, updated time.Time) fakeOrder {
	return fakeOrder{updated: updated, body: fmt.Sprintf(`{"id":%d,  "name":"#%d", "total_price":"58.99",
	 "updated_at":%q}`, 9007199254740993+n, 1000+n, updated.Format(time.RFC3339))}
}

// client returns a client of f whose waits are recorded instead of slept.
func (f *fakeAdmin) client(waits *[]time.Duration) *shopify.AdminClient {
	return &shopify.AdminClient{BaseURL: f.srv.URL, Token: adminToken, APIVersion: adminVersion,
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
	var orders []fakeOrder
	orders = append(orders, order(0, now.Add(-100*time.Hour))) // before the cursor: never listed
	for i := 1; i <= 5; i++ {
		orders = append(orders, order(i, now.Add(time.Duration(i-6)*time.Hour)))
	}
	f := newFakeAdmin(t, 2, orders...)
	var waits []time.Duration
	since := now.Add(-72 * time.Hour)

	pages, err := listAll(f.client(&waits), context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{orders[1].body, orders[2].body}, {orders[3].body, orders[4].body}, {orders[5].body}}
	if !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("pages (exact bytes):\n%q\nwant\n%q", pages, want)
	}
	reqs := f.requestLog()
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
		canned      []canned
		wantWaits   []time.Duration
		wantStatus  int // 0: the listing succeeds
		rateLimited int
		serverErrs  int
	}{
		{"429 with a fractional Retry-After", []canned{{429, "0.05"}}, []time.Duration{50 * time.Millisecond}, 0, 1, 0},
		{"429 with Retry-After 2.0", []canned{{429, "2.0"}}, []time.Duration{2 * time.Second}, 0, 1, 0},
		{"429 with a huge Retry-After is capped", []canned{{429, "3600"}}, []time.Duration{time.Minute}, 0, 1, 0},
		{"429 without Retry-After waits the default", []canned{{429, ""}}, []time.Duration{2 * time.Second}, 0, 1, 0},
		{"500 once", []canned{{500, ""}}, []time.Duration{500 * time.Millisecond}, 0, 0, 1},
		{"5xx backs off exponentially", []canned{{500, ""}, {502, ""}, {503, ""}},
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}, 0, 0, 3},
		{"5xx gives up after four attempts", []canned{{500, ""}, {500, ""}, {500, ""}, {503, ""}},
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}, 503, 0, 4},
		{"429 gives up after eight attempts", slices.Repeat([]canned{{429, "0.05"}}, 8),
			slices.Repeat([]time.Duration{50 * time.Millisecond}, 7), 429, 8, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAdmin(t, 2, order(1, now.Add(-time.Hour)), order(2, now.Add(-time.Minute)))
			f.canned = tc.canned
			var waits []time.Duration
			var stats shopify.CallStats
			pages, err := listAll(f.client(&waits), shopify.WithCallStats(context.Background(), &stats), now.Add(-72*time.Hour))

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
		canned     []canned
		wantStatus int
		wantHint   string
	}{
		{"wrong token", "shpat_revoked_token_secret", adminVersion, nil, 401, "OPSPINE_SHOPIFY_ADMIN_TOKEN"},
		{"missing scope", adminToken, adminVersion, []canned{{403, ""}}, 403, "scope"},
		{"unknown API version", adminToken, "2019-01", nil, 404, "OPSPINE_SHOPIFY_API_VERSION"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAdmin(t, 2, order(1, now.Add(-time.Hour)))
			f.canned = tc.canned
			var waits []time.Duration
			c := f.client(&waits)
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
			if n := len(f.requestLog()); n != 1 || len(waits) != 0 {
				t.Errorf("%d requests, waits %v: want one request and no retry", n, waits)
			}
		})
	}
}

func TestListOrdersUpdatedSinceStopsWhenTheContextEnds(t *testing.T) {
	f := newFakeAdmin(t, 2, order(1, now.Add(-time.Hour)))
	f.canned = []canned{{429, "30"}}
	c := &shopify.AdminClient{BaseURL: f.srv.URL, Token: adminToken, APIVersion: adminVersion} // real sleep, default HTTP
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
	c := (&fakeAdmin{srv: shop}).client(&waits)

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

	err := f.client(&waits).ListOrdersUpdatedSince(context.Background(), now.Add(-3*time.Hour), func([]json.RawMessage) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err %v, want the handler's error", err)
	}
	if n := len(f.requestLog()); n != 1 {
		t.Errorf("%d requests, want 1: no page is fetched after the handler fails", n)
	}
}
