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
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	client  *http.Client
}

// childEnv is everything the child inherits: the runtime's own knobs and the bench
// shop. Nothing else from the bench's environment (no OPSPINE_* secrets, no tokens).
func childEnv(secret string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env,
		"OPSPINE_SHOPIFY_SHOP_DOMAIN="+benchShop,
		"OPSPINE_SHOPIFY_WEBHOOK_SECRET="+secret,
	)
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

// startChild creates a superuser in dir, starts `exe serve` on a free loopback port,
// waits for /api/health and signs in as that superuser.
func startChild(ctx context.Context, exe, dir, secret string) (*child, error) {
	c := &child{exe: exe, dir: dir, secret: secret, logPath: filepath.Join(dir, "serve.log"),
		client: &http.Client{Timeout: 10 * time.Second}}
	dataDir := filepath.Join(dir, "pb_data")
	email, password := "bench@example.com", randomHex(16)

	upsert := exec.CommandContext(ctx, exe, "superuser", "upsert", email, password, "--dir", dataDir)
	upsert.Env = childEnv(c.secret)
	if out, err := upsert.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("create the bench superuser: %w\n%s", err, out)
	}

	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c.base = "http://" + addr
	logFile, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	c.cmd = exec.Command(exe, "serve", "--http", addr, "--dir", dataDir)
	c.cmd.Env = childEnv(c.secret)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = childProcAttr()
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s serve: %w", exe, err)
	}
	c.exited = make(chan struct{})
	go func() {
		c.waitErr = c.cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()

	if err := c.waitHealthy(ctx, 30*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	if err := c.signIn(ctx, email, password); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

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
		case <-time.After(25 * time.Millisecond):
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
	q := url.Values{}
	q.Set("filter", fmt.Sprintf("(status='%s')", status))
	q.Set("perPage", "1")
	q.Set("skipTotal", "0")
	q.Set("fields", "id")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/collections/webhook_inbox/records?"+q.Encode(), nil)
	req.Header.Set("Authorization", c.token)
	res, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("count %s deliveries: %w", status, err)
	}
	defer res.Body.Close()
	var out struct {
		TotalItems int `json:"totalItems"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("count %s deliveries: status %d (%v)", status, res.StatusCode, err)
	}
	return out.TotalItems, nil
}

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

// waitSettled polls until nothing is pending and returns when that was first seen.
func (c *child) waitSettled(ctx context.Context, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		n, err := c.count(ctx, "pending")
		if err != nil {
			return time.Time{}, err
		}
		if n == 0 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Now(), fmt.Errorf("%w: %d deliveries still pending after %s", errNotSettled, n, limit)
		}
		select {
		case <-c.exited:
			return time.Time{}, fmt.Errorf("opspine serve exited (%v):\n%s", c.waitErr, c.logTail())
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(50 * time.Millisecond): // each poll is a COUNT over webhook_inbox: keep it rare
		}
	}
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
