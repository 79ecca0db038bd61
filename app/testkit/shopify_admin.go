package testkit

import (
	"bytes"
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
)

// ShopifyAdmin stands in for one shop's Admin REST API orders endpoint on 127.0.0.1.
// It checks the X-Shopify-Access-Token (a wrong one gets a 401 that echoes what was
// sent, as a careless proxy might, so a client must not repeat it) and the API version
// in the path (404 otherwise), lists its orders updated at or after updated_at_min,
// oldest update first and byte for byte as they were put, and pages with Link
// rel="previous" and rel="next" whose page_info requests accept only limit (400 for
// any other parameter, as Shopify's do). Requests that reach the endpoint can be given
// canned answers (429 with Retry-After, 5xx, 401, 403), and every request is recorded.
type ShopifyAdmin struct {
	// URL is the fake's base URL, to use as the shop's Admin API base URL.
	URL string

	t        testing.TB
	version  string
	pageSize int

	mu       sync.Mutex
	token    string
	orders   []shopifyOrder // in the order they were first put
	queued   []ShopifyAnswer
	nth      map[int]ShopifyAnswer // by request number, from 1
	served   int                   // requests that reached the endpoint
	requests []url.URL
}

// ShopifyAnswer is a canned answer: an error status, with a Retry-After when set.
type ShopifyAnswer struct {
	Status     int
	RetryAfter string
}

type shopifyOrder struct {
	id      string
	updated time.Time
	body    []byte
}

// NewShopifyAdmin starts a fake Admin API that accepts token on API version version
// and lists pageSize orders a page. It is closed when the test ends.
func NewShopifyAdmin(t testing.TB, token, version string, pageSize int) *ShopifyAdmin {
	t.Helper()
	if pageSize < 1 {
		t.Fatalf("shopify admin fake: page size %d", pageSize)
	}
	f := &ShopifyAdmin{t: t, version: version, pageSize: pageSize, token: token, nth: map[int]ShopifyAnswer{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Put adds or replaces (by id) an order, as a change in the shop would; it is listed
// as doc's JSON encoding, by its updated_at.
func (f *ShopifyAdmin) Put(doc Doc) {
	f.t.Helper()
	f.PutJSON(doc.JSON())
}

// PutJSON adds or replaces (by id) an order given as a JSON object with an id and an
// RFC 3339 updated_at; it is listed exactly as these bytes.
func (f *ShopifyAdmin) PutJSON(body []byte) {
	f.t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var head struct {
		ID        json.Number `json:"id"`
		UpdatedAt string      `json:"updated_at"`
	}
	if err := dec.Decode(&head); err != nil || head.ID == "" {
		f.t.Fatalf("shopify admin fake: order without an id (%v): %s", err, body)
	}
	updated, err := time.Parse(time.RFC3339, head.UpdatedAt)
	if err != nil {
		f.t.Fatalf("shopify admin fake: order %s: updated_at: %v", head.ID, err)
	}
	o := shopifyOrder{id: head.ID.String(), updated: updated, body: slices.Clone(body)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.IndexFunc(f.orders, func(p shopifyOrder) bool { return p.id == o.id }); i >= 0 {
		f.orders[i] = o
		return
	}
	f.orders = append(f.orders, o)
}

// QueueAnswers gives answers, in turn, to the next requests that reach the endpoint
// and have no answer of their own (AnswerNth).
func (f *ShopifyAdmin) QueueAnswers(answers ...ShopifyAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, answers...)
}

// AnswerNth gives a, once, to the nth request (from 1, since the fake started) that
// reaches the endpoint.
func (f *ShopifyAdmin) AnswerNth(n int, a ShopifyAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nth[n] = a
}

// ClearAnswers drops every canned answer not given yet.
func (f *ShopifyAdmin) ClearAnswers() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued, f.nth = nil, map[int]ShopifyAnswer{}
}

// SetToken changes the access token the fake accepts.
func (f *ShopifyAdmin) SetToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = token
}

// TakeRequests returns the URLs of the requests received since the last call.
func (f *ShopifyAdmin) TakeRequests() []url.URL {
	f.mu.Lock()
	defer f.mu.Unlock()
	reqs := f.requests
	f.requests = nil
	return reqs
}

func (f *ShopifyAdmin) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, *r.URL)
	w.Header().Set("Content-Type", "application/json")
	if got := r.Header.Get("X-Shopify-Access-Token"); got != f.token {
		http.Error(w, fmt.Sprintf(`{"errors":"[API] Invalid API key or access token %s"}`, got), http.StatusUnauthorized)
		return
	}
	if r.URL.Path != f.ordersPath() {
		http.Error(w, `{"errors":"Not Found"}`, http.StatusNotFound)
		return
	}
	f.served++
	if a, ok := f.answer(); ok {
		if a.RetryAfter != "" {
			w.Header().Set("Retry-After", a.RetryAfter)
		}
		http.Error(w, fmt.Sprintf(`{"errors":"canned %d"}`, a.Status), a.Status)
		return
	}
	since, offset, err := shopifyCursor(r.URL.Query())
	if err != nil {
		http.Error(w, fmt.Sprintf(`{"errors":%q}`, err.Error()), http.StatusBadRequest)
		return
	}
	var listed []shopifyOrder
	for _, o := range f.orders {
		if !o.updated.Before(since) {
			listed = append(listed, o)
		}
	}
	slices.SortStableFunc(listed, func(a, b shopifyOrder) int { return a.updated.Compare(b.updated) })
	offset = min(offset, len(listed))
	end := min(offset+f.pageSize, len(listed))
	var links []string
	if offset > 0 {
		links = append(links, fmt.Sprintf(`<%s>; rel="previous"`, f.pageURL(since, max(0, offset-f.pageSize))))
	}
	if end < len(listed) {
		links = append(links, fmt.Sprintf(`<%s>; rel="next"`, f.pageURL(since, end)))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	bodies := make([][]byte, 0, end-offset)
	for _, o := range listed[offset:end] {
		bodies = append(bodies, o.body)
	}
	fmt.Fprintf(w, `{"orders":[%s]}`, bytes.Join(bodies, []byte(",")))
}

// answer takes the canned answer for the request just counted, if there is one.
func (f *ShopifyAdmin) answer() (ShopifyAnswer, bool) {
	if a, ok := f.nth[f.served]; ok {
		delete(f.nth, f.served) // each is given once
		return a, true
	}
	if len(f.queued) > 0 {
		a := f.queued[0]
		f.queued = f.queued[1:]
		return a, true
	}
	return ShopifyAnswer{}, false
}

func (f *ShopifyAdmin) ordersPath() string { return "/admin/api/" + f.version + "/orders.json" }

func (f *ShopifyAdmin) pageURL(since time.Time, offset int) string {
	pi := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d|%d", since.Unix(), offset))
	return f.URL + f.ordersPath() + "?limit=250&page_info=" + pi
}

// shopifyCursor reads where a request starts: the first page's filters or a page_info.
// A page_info request carries limit and nothing else, as in the Link header.
func shopifyCursor(q url.Values) (time.Time, int, error) {
	if pi := q.Get("page_info"); pi != "" {
		for k := range q {
			if k != "page_info" && k != "limit" {
				return time.Time{}, 0, fmt.Errorf("page_info requests accept no %s parameter", k)
			}
		}
		if q.Get("limit") == "" {
			return time.Time{}, 0, errors.New("page_info request without the Link header's limit")
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
