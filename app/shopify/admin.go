package shopify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits of the Admin API client's retries.
const (
	// MaxRateLimitedAttempts bounds how often one request is sent while Shopify answers 429.
	MaxRateLimitedAttempts = 8
	// MaxServerErrorAttempts bounds how often one request is sent while Shopify answers 5xx.
	MaxServerErrorAttempts = 4
	// MaxRetryAfter caps the wait a 429's Retry-After asks for.
	MaxRetryAfter = 60 * time.Second
	// DefaultRetryAfter is the wait after a 429 without a usable Retry-After (Shopify's
	// REST bucket leaks two requests a second; it usually sends "2.0").
	DefaultRetryAfter = 2 * time.Second
	// ServerErrorBackoff is the first wait after a 5xx; it doubles on each further one.
	ServerErrorBackoff = 500 * time.Millisecond
	// DefaultHTTPTimeout is the whole-request timeout when AdminClient.HTTP is nil.
	DefaultHTTPTimeout = 30 * time.Second
	// OrdersPageSize is the largest page the REST orders endpoint returns.
	OrdersPageSize = 250
	// maxErrorBody is how much of an error response is read into the error message.
	maxErrorBody = 512
)

// MaxPageBytes bounds one page's answer: 250 orders of many line items each stay far
// below it, and an answer that does not end is refused rather than read forever.
var MaxPageBytes int64 = 64 << 20

// AdminClient calls the Shopify Admin REST API of one shop with an access token.
// The token is sent only in X-Shopify-Access-Token, only to BaseURL's host, and never
// appears in an error.
type AdminClient struct {
	// BaseURL is https://<shop>.myshopify.com (or a stand-in in tests), without a trailing slash.
	BaseURL    string
	Token      string
	APIVersion string
	// HTTP is the client used; nil is one with DefaultHTTPTimeout.
	HTTP *http.Client
	// Sleep waits d or until ctx ends; nil is a timer that honours ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// CallStats counts what the client met while serving one call: attach one to the
// call's context with WithCallStats to read it afterwards.
type CallStats struct {
	Requests     int // HTTP requests sent, retries included
	RateLimited  int // 429 answers
	ServerErrors int // 5xx answers
}

type callStatsKey struct{}

// WithCallStats returns a context under which the client counts into stats.
func WithCallStats(ctx context.Context, stats *CallStats) context.Context {
	return context.WithValue(ctx, callStatsKey{}, stats)
}

func callStats(ctx context.Context) *CallStats {
	if s, ok := ctx.Value(callStatsKey{}).(*CallStats); ok && s != nil {
		return s
	}
	return &CallStats{}
}

// APIError is an answer from Shopify that retrying will not fix (or that kept failing
// after the retries): the status and the start of Shopify's message.
type APIError struct {
	Status  int
	Path    string
	Message string
}

func (e *APIError) Error() string {
	hint := ""
	switch e.Status {
	case http.StatusUnauthorized:
		hint = " (the Admin API access token is missing, wrong or revoked: check OPSPINE_SHOPIFY_ADMIN_TOKEN)"
	case http.StatusForbidden:
		hint = " (the access token lacks a scope this call needs, e.g. read_orders / read_all_orders)"
	case http.StatusNotFound:
		hint = " (check the shop domain, OPSPINE_SHOPIFY_ADMIN_BASE_URL and OPSPINE_SHOPIFY_API_VERSION)"
	case http.StatusTooManyRequests:
		hint = " (still rate limited after retrying)"
	}
	msg := ""
	if e.Message != "" {
		msg = ": " + e.Message
	}
	return fmt.Sprintf("shopify admin api %s: HTTP %d%s%s", e.Path, e.Status, hint, msg)
}

// ListOrdersUpdatedSince lists every order (any status) updated at or after since,
// oldest update first, handing each page to page as the exact JSON of each order.
// It follows the Link header's rel="next" cursor, waits out 429s as Retry-After asks
// and retries 5xx with exponential backoff, both a bounded number of times. An error
// from page stops the listing and is returned as is.
func (c *AdminClient) ListOrdersUpdatedSince(ctx context.Context, since time.Time, page func(orders []json.RawMessage) error) error {
	base, err := c.base()
	if err != nil {
		return err
	}
	q := url.Values{}
	q.Set("status", "any")
	q.Set("updated_at_min", since.UTC().Format(time.RFC3339))
	q.Set("limit", strconv.Itoa(OrdersPageSize))
	q.Set("order", "updated_at asc")
	next := base.JoinPath("/admin/api", url.PathEscape(c.APIVersion), "orders.json")
	next.RawQuery = q.Encode()
	seen := map[string]bool{}
	for next != nil {
		if seen[next.String()] {
			return fmt.Errorf("shopify admin api %s: the next-page link repeats a page already read; stopping", next.Path)
		}
		seen[next.String()] = true
		var body struct {
			Orders []json.RawMessage `json:"orders"`
		}
		header, err := c.getJSON(ctx, next, &body)
		if err != nil {
			return err
		}
		if err := page(body.Orders); err != nil {
			return err
		}
		if next, err = nextPage(base, header.Get("Link")); err != nil {
			return err
		}
	}
	return nil
}

func (c *AdminClient) base() (*url.URL, error) {
	if c.APIVersion == "" {
		return nil, errors.New("shopify admin api: no API version set")
	}
	u, err := url.Parse(strings.TrimRight(c.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("shopify admin api: base URL %q is not an http(s) URL", c.BaseURL)
	}
	if u.Path == "" {
		u.Path = "/" // so joined paths stay absolute
	}
	return u, nil
}

// getJSON GETs u (retrying as ListOrdersUpdatedSince describes) and decodes a 200 into v.
func (c *AdminClient) getJSON(ctx context.Context, u *url.URL, v any) (http.Header, error) {
	stats := callStats(ctx)
	rateLimited, serverErrors := 0, 0
	for {
		res, err := c.send(ctx, u)
		stats.Requests++
		if err != nil {
			return nil, err
		}
		var wait time.Duration
		switch {
		case res.StatusCode == http.StatusOK:
			defer res.Body.Close()
			body := &io.LimitedReader{R: res.Body, N: MaxPageBytes + 1}
			if err := json.NewDecoder(body).Decode(v); err != nil {
				if body.N <= 0 {
					return nil, fmt.Errorf("shopify admin api %s: the answer is over %d MB; refused", u.Path, MaxPageBytes>>20)
				}
				return nil, fmt.Errorf("shopify admin api %s: read response: %w", u.Path, err)
			}
			return res.Header, nil
		case res.StatusCode == http.StatusTooManyRequests:
			stats.RateLimited++
			rateLimited++
			wait = retryAfter(res.Header.Get("Retry-After"))
			if rateLimited >= MaxRateLimitedAttempts {
				return nil, c.apiError(u, res)
			}
		case res.StatusCode >= 500:
			stats.ServerErrors++
			serverErrors++
			wait = ServerErrorBackoff << (serverErrors - 1)
			if serverErrors >= MaxServerErrorAttempts {
				return nil, c.apiError(u, res)
			}
		default:
			return nil, c.apiError(u, res)
		}
		drain(res)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("shopify admin api %s: waiting to retry: %w", u.Path, err)
		}
	}
}

func (c *AdminClient) send(ctx context.Context, u *url.URL) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("shopify admin api %s: %w", u.Path, err)
	}
	req.Header.Set("X-Shopify-Access-Token", c.Token)
	req.Header.Set("Accept", "application/json")
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("shopify admin api %s: %w", u.Path, err) // the token is in a header, never in the URL
	}
	return res, nil
}

// apiError reads the start of the answer into an APIError and closes it.
func (c *AdminClient) apiError(u *url.URL, res *http.Response) error {
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	msg := strings.Join(strings.Fields(string(b)), " ")
	return &APIError{Status: res.StatusCode, Path: u.Path, Message: c.scrub(msg)}
}

// scrub removes the token from text that came back from the network, in case a proxy echoes it.
func (c *AdminClient) scrub(s string) string {
	if c.Token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.Token, "[token]")
}

func (c *AdminClient) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func drain(res *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
}

// retryAfter reads a Retry-After in seconds ("2", "2.0", "0.05"), capped at MaxRetryAfter;
// missing or unreadable is DefaultRetryAfter.
func retryAfter(v string) time.Duration {
	secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || secs < 0 || secs != secs {
		return DefaultRetryAfter
	}
	if secs >= MaxRetryAfter.Seconds() {
		return MaxRetryAfter
	}
	return time.Duration(secs * float64(time.Second))
}

// nextPage returns the rel="next" URL of a Link header, or nil on the last page. The
// URL is used as Shopify wrote it (a page_info request accepts no other filters), but
// only on the shop's own scheme and host, so the token never goes elsewhere.
func nextPage(base *url.URL, link string) (*url.URL, error) {
	for _, part := range strings.Split(link, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !isRelNext(params) {
			continue
		}
		target = strings.TrimSpace(target)
		if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			return nil, fmt.Errorf("shopify admin api: unreadable Link header entry %q", target)
		}
		u, err := base.Parse(strings.Trim(target, "<>"))
		if err != nil {
			return nil, fmt.Errorf("shopify admin api: next page link: %w", err)
		}
		if u.Scheme != base.Scheme || u.Host != base.Host {
			return nil, fmt.Errorf("shopify admin api: next page link points to %s://%s, not the shop's %s://%s",
				u.Scheme, u.Host, base.Scheme, base.Host)
		}
		return u, nil
	}
	return nil, nil
}

func isRelNext(params string) bool {
	for _, p := range strings.Split(params, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(name), "rel") {
			for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(value), `"`)) {
				if strings.EqualFold(rel, "next") {
					return true
				}
			}
		}
	}
	return false
}
