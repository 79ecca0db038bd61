package benchmark

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// benchShop is the shop the child is configured with; the secret is random per run.
const benchShop = "bench-shop.myshopify.com"

// child is a real `opspine serve` started from the bench's own executable on a
// loopback port, with its data in a temp dir.
type child struct {
	exe     string
	dir     string
	base    string
	secret  string
	token   string
	logPath string
	env     []string // extra environment variables, KEY=value
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	client  *http.Client
}

// childEnv is everything the child inherits: the runtime's own knobs, the bench
// shop and extra (KEY=value, e.g. SMTP settings a test gives). Nothing else from the
// bench's environment (no OPSPINE_* secrets, no tokens).
func childEnv(secret string, extra ...string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(append(env,
		"OPSPINE_SHOPIFY_SHOP_DOMAIN="+benchShop,
		"OPSPINE_SHOPIFY_WEBHOOK_SECRET="+secret,
	), extra...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startChild creates a superuser in dir, starts `exe serve` on a free loopback port
// with extraEnv (KEY=value) added to its environment, waits for /api/health and signs
// in as that superuser.
func startChild(ctx context.Context, exe, dir, secret string, extraEnv ...string) (*child, error) {
	email, password := "bench@example.com", randomHex(16)
	upsert := exec.CommandContext(ctx, exe, "superuser", "upsert", email, password, "--dir", filepath.Join(dir, "pb_data"))
	upsert.Env = childEnv(secret, extraEnv...)
	if out, err := upsert.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("create the bench superuser: %w\n%s", err, out)
	}

	c, err := launchServe([]string{exe}, dir, secret, extraEnv...)
	if err != nil {
		return nil, err
	}
	if err := c.waitHealthy(ctx, 30*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	if err := c.signIn(ctx, email, password); err != nil {
		c.stop()
		return nil, err
	}
	if err := c.disableRateLimits(ctx); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// disableRateLimits turns the child's rate limiter off: the bench measures how much
// ingestion can take from one address, which the webhook's flood guard would cap.
func (c *child) disableRateLimits(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, c.base+"/api/settings",
		strings.NewReader(`{"rateLimits":{"enabled":false}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", c.token)
	res, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("turn the bench server's rate limits off: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("turn the bench server's rate limits off: status %d", res.StatusCode)
	}
	return nil
}

// waitHealthy polls /api/health every 5 ms until it answers 200; the cold start is
// timed by it.
func (c *child) waitHealthy(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/health", nil)
		if res, err := c.client.Do(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("opspine serve exited before it was healthy (%v):\n%s", c.waitErr, c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("opspine serve not healthy after %s:\n%s", limit, c.logTail())
		}
	}
}

func (c *child) signIn(ctx context.Context, email, password string) error {
	body, _ := json.Marshal(map[string]string{"identity": email, "password": password})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/collections/_superusers/auth-with-password", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("sign in as the bench superuser: %w", err)
	}
	defer res.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK || out.Token == "" {
		return fmt.Errorf("sign in as the bench superuser: status %d (%v)", res.StatusCode, err)
	}
	c.token = out.Token
	return nil
}

// createProducts adds a product for each SKU, as staff would before selling it, so
// line items match products as they do in production.
func (c *child) createProducts(ctx context.Context, skus []string) error {
	for _, sku := range skus {
		body, _ := json.Marshal(map[string]any{"sku": sku, "name": "Bench " + sku, "active": true})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/collections/products/records", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", c.token)
		res, err := c.client.Do(req)
		if err != nil {
			return fmt.Errorf("create product %s: %w", sku, err)
		}
		msg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("create product %s: status %d: %s", sku, res.StatusCode, msg)
		}
	}
	return nil
}

// count returns how many webhook_inbox rows have this status, through the records API.
func (c *child) count(ctx context.Context, status string) (int, error) {
	n, err := c.total(ctx, "webhook_inbox", fmt.Sprintf("(status='%s')", status))
	if err != nil {
		return 0, fmt.Errorf("count %s deliveries: %w", status, err)
	}
	return n, nil
}

// total counts a collection's records matching a PocketBase filter ("" for all).
func (c *child) total(ctx context.Context, collection, filter string) (int, error) {
	q := url.Values{}
	if filter != "" {
		q.Set("filter", filter)
	}
	q.Set("perPage", "1")
	q.Set("skipTotal", "0")
	q.Set("fields", "id")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/collections/"+collection+"/records?"+q.Encode(), nil)
	req.Header.Set("Authorization", c.token)
	res, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var out struct {
		TotalItems int `json:"totalItems"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: status %d (%v)", collection, res.StatusCode, err)
	}
	return out.TotalItems, nil
}

// statusByWebhookID reads the status of the delivery Shopify knows by this webhook id.
func (c *child) statusByWebhookID(ctx context.Context, webhookID string) (string, error) {
	q := url.Values{}
	q.Set("filter", fmt.Sprintf("(webhook_id='%s')", webhookID))
	q.Set("fields", "status")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/collections/webhook_inbox/records?"+q.Encode(), nil)
	req.Header.Set("Authorization", c.token)
	res, err := c.client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var out struct {
		Items []struct {
			Status string `json:"status"`
		} `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("delivery %s: status %d (%v)", webhookID, res.StatusCode, err)
	}
	if len(out.Items) != 1 {
		return "", fmt.Errorf("delivery %s: %d inbox rows, want 1", webhookID, len(out.Items))
	}
	return out.Items[0].Status, nil
}

// lags returns, for every delivery received since `since`, how long after it was
// committed its processing finished: processed_at (when processing started) plus
// processing_ms, minus received_at; millisecond precision.
func (c *child) lags(ctx context.Context, since time.Time) ([]time.Duration, error) {
	var out []time.Duration
	for page := 1; ; page++ {
		q := url.Values{}
		q.Set("filter", fmt.Sprintf("(received_at>='%s' && processed_at!='')", since.UTC().Format(pbDate)))
		q.Set("fields", "received_at,processed_at,processing_ms")
		q.Set("perPage", "1000")
		q.Set("page", fmt.Sprint(page))
		q.Set("skipTotal", "1")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/collections/webhook_inbox/records?"+q.Encode(), nil)
		req.Header.Set("Authorization", c.token)
		res, err := c.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("list processing times: %w", err)
		}
		var list struct {
			Items []struct {
				ReceivedAt  string `json:"received_at"`
				ProcessedAt string `json:"processed_at"`
				Processing  int64  `json:"processing_ms"`
			} `json:"items"`
		}
		err = json.NewDecoder(res.Body).Decode(&list)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("list processing times: status %d (%v)", res.StatusCode, err)
		}
		for _, it := range list.Items {
			r, err1 := time.Parse(pbDate, it.ReceivedAt)
			p, err2 := time.Parse(pbDate, it.ProcessedAt)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("list processing times: dates %q, %q", it.ReceivedAt, it.ProcessedAt)
			}
			out = append(out, p.Sub(r)+time.Duration(it.Processing)*time.Millisecond)
		}
		if len(list.Items) < 1000 {
			return out, nil
		}
	}
}

// pbDate is how PocketBase stores and filters dates.
const pbDate = "2006-01-02 15:04:05.000Z"

// inboxCounts is webhook_inbox by status.
type inboxCounts struct{ Pending, Processed, Failed, Dead, Skipped int }

func (c *child) counts(ctx context.Context) (inboxCounts, error) {
	var n inboxCounts
	for _, f := range []struct {
		status string
		dst    *int
	}{{"pending", &n.Pending}, {"processed", &n.Processed}, {"failed", &n.Failed}, {"dead", &n.Dead}, {"skipped", &n.Skipped}} {
		v, err := c.count(ctx, f.status)
		if err != nil {
			return n, err
		}
		*f.dst = v
	}
	return n, nil
}

// errNotSettled is waitSettled's answer when deliveries are still pending at its limit.
var errNotSettled = errors.New("not settled")

// waitSettled waits until nothing is pending and returns when the last delivery was
// seen processed. Counting pending rows scans webhook_inbox, which would slow the very
// processing being timed, so it polls the last answered delivery by id (a primary-key
// read) and counts only to confirm; deliveries the live pipeline never took (its queue
// was full) wait for the retry job, and are then polled for by count, less often.
func (c *child) waitSettled(ctx context.Context, lastID string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	interval := 10 * time.Millisecond
	lastDone := lastID == ""
	for {
		seen := time.Now()
		if !lastDone {
			status, err := c.status(ctx, lastID)
			if err != nil {
				return time.Time{}, err
			}
			lastDone = status != "pending"
		}
		if lastDone {
			n, err := c.count(ctx, "pending")
			if err != nil {
				return time.Time{}, err
			}
			if n == 0 {
				return seen, nil
			}
			interval = 250 * time.Millisecond
			if time.Now().After(deadline) {
				return time.Now(), fmt.Errorf("%w: %d deliveries still pending after %s", errNotSettled, n, limit)
			}
		} else if time.Now().After(deadline) {
			return time.Now(), fmt.Errorf("%w: delivery %s still pending after %s", errNotSettled, lastID, limit)
		}
		select {
		case <-c.exited:
			return time.Time{}, fmt.Errorf("opspine serve exited (%v):\n%s", c.waitErr, c.logTail())
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// status reads one webhook_inbox row's status by id.
func (c *child) status(ctx context.Context, id string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/collections/webhook_inbox/records/"+url.PathEscape(id)+"?fields=status", nil)
	req.Header.Set("Authorization", c.token)
	res, err := c.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("read delivery %s: %w", id, err)
	}
	defer res.Body.Close()
	var out struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("read delivery %s: status %d (%v)", id, res.StatusCode, err)
	}
	return out.Status, nil
}

// stop sends SIGTERM and waits up to 15 s before killing the child.
func (c *child) stop() error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	select {
	case <-c.exited:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop opspine serve: %w", err)
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("opspine serve did not stop within 15s of SIGTERM; killed")
	}
}

// logTail is the end of the child's output, for error messages.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// kill sends SIGKILL, as a power cut or the OOM killer would, and waits for the exit.
func (c *child) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Kill()
	<-c.exited
}
