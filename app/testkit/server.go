package testkit

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/opspine/opspine/app/config"
	"github.com/opspine/opspine/app/ingest"
	"github.com/opspine/opspine/hooks"
	_ "github.com/opspine/opspine/pb_migrations"
)

// Shop and Secret are the shop every test server knows.
const (
	Shop   = "protocol-raw.myshopify.com"
	Secret = "shpss_test_secret_1"
)

// migrated is a data dir with every migration applied, made once per test binary;
// each test gets its own copy, about a tenth of the cost of migrating (most of a
// second under -race).
var migrated struct {
	once sync.Once
	dir  string
	err  error
}

// NewApp returns a PocketBase app on its own SQLite files with every opspine migration
// applied. It is removed when the test ends.
func NewApp(t testing.TB) *tests.TestApp {
	t.Helper()
	migrated.once.Do(func() {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("opspine-migrated-%d", os.Getpid()))
		if migrated.err = os.MkdirAll(dir, 0o755); migrated.err != nil {
			return
		}
		app := core.NewBaseApp(core.BaseAppConfig{DataDir: dir, EncryptionEnv: "pb_test_env"})
		if migrated.err = app.Bootstrap(); migrated.err != nil {
			return
		}
		if migrated.err = app.RunAllMigrations(); migrated.err != nil {
			return
		}
		migrated.err = app.ResetBootstrapState()
		migrated.dir = dir
	})
	if migrated.err != nil {
		t.Fatalf("migrate the template database: %v", migrated.err)
	}
	app, err := tests.NewTestApp(migrated.dir)
	if err != nil {
		t.Fatalf("new test app: %v", err)
	}
	t.Cleanup(app.Cleanup)
	return app
}

// Main runs a package's tests and removes the migrated template afterwards; use it
// as `func TestMain(m *testing.M) { testkit.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	if migrated.dir != "" {
		os.RemoveAll(migrated.dir)
	}
	os.Exit(code)
}

// Config is the configuration tests start from: the test shop with its secret, and
// the environment variables' defaults for everything else.
func Config(t testing.TB, env map[string]string) config.Config {
	t.Helper()
	base := map[string]string{"OPSPINE_SHOPIFY_SHOP_DOMAIN": Shop, "OPSPINE_SHOPIFY_WEBHOOK_SECRET": Secret}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.Load(func(k string) string { return base[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// Server is opspine serving on 127.0.0.1 over a real SQLite file.
type Server struct {
	URL   string
	App   *tests.TestApp
	Spine *hooks.Spine
	Clock *clockwork.FakeClock
	http  *httptest.Server
	seq   atomic.Int64
}

// StartServer binds opspine onto a fresh app, triggers serve as `opspine serve` does
// (configured shop, routes, pipeline) and serves it on 127.0.0.1. Time is a fake clock
// that starts at `start`, and jobs run only when a test asks (Spine.Scheduler.RunNow),
// so moving the clock never races a scheduled run.
func StartServer(t testing.TB, cfg config.Config, start time.Time) *Server {
	t.Helper()
	app := NewApp(t)
	clock := clockwork.NewFakeClockAt(start)
	spine, err := hooks.Bind(app, cfg, clock)
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	spine.ScheduleJobs = false
	router, err := apis.NewRouter(app)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	var mux http.Handler
	err = app.OnServe().Trigger(&core.ServeEvent{App: app, Router: router}, func(e *core.ServeEvent) error {
		m, err := e.Router.BuildMux()
		mux = m
		return err
	})
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close) // runs before app.Cleanup (LIFO), which stops the spine
	return &Server{URL: srv.URL, App: app, Spine: spine, Clock: clock, http: srv}
}

// Delivery is one webhook as Shopify would send it.
type Delivery struct {
	Topic     string
	WebhookID string // a fresh one when empty
	Body      []byte
	Secret    string // Secret when empty
	Shop      string // Shop when empty
	Signature string // computed when empty
}

// Deliver POSTs d to /api/webhooks/shopify, signed, and returns the status code.
func (s *Server) Deliver(t testing.TB, d Delivery) int {
	t.Helper()
	res, err := s.Post(d)
	if err != nil {
		t.Fatalf("deliver %s: %v", d.Topic, err)
	}
	return res
}

// Post sends d and returns the status code (no test failure on transport errors).
func (s *Server) Post(d Delivery) (int, error) {
	req := s.Request(d)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// Request builds the signed request for d.
func (s *Server) Request(d Delivery) *http.Request {
	if d.WebhookID == "" {
		d.WebhookID = fmt.Sprintf("wh-%d-%d", time.Now().UnixNano(), s.seq.Add(1))
	}
	if d.Secret == "" {
		d.Secret = Secret
	}
	if d.Shop == "" {
		d.Shop = Shop
	}
	if d.Signature == "" {
		d.Signature = ingest.SignShopifyBody(d.Body, d.Secret)
	}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/webhooks/shopify", bytes.NewReader(d.Body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shopify-Topic", d.Topic)
	req.Header.Set("X-Shopify-Shop-Domain", d.Shop)
	req.Header.Set("X-Shopify-Webhook-Id", d.WebhookID)
	req.Header.Set("X-Shopify-Event-Id", "ev-"+d.WebhookID)
	req.Header.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
	req.Header.Set("X-Shopify-Api-Version", "2025-10")
	req.Header.Set("X-Shopify-Hmac-Sha256", d.Signature)
	return req
}

// WaitSettled waits until no delivery is pending (the pipeline has done its work).
func (s *Server) WaitSettled(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := s.App.DB().NewQuery(`SELECT COUNT(*) FROM webhook_inbox WHERE status = 'pending'`).Row(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("deliveries still pending after 15s")
}

// Count runs SELECT COUNT(*) FROM table WHERE where (with args as {:name} params).
func Count(t testing.TB, app core.App, table, where string, params map[string]any) int {
	t.Helper()
	q := "SELECT COUNT(*) FROM " + table
	if strings.TrimSpace(where) != "" {
		q += " WHERE " + where
	}
	var n int
	if err := app.DB().NewQuery(q).Bind(params).Row(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// ReadyPasswordHash is a bcrypt hash of "123456" for staff made by tests: hashing a
// password per staff member costs about a second under -race, and tests sign in with
// tokens. A test that signs in with a password sets its own.
const ReadyPasswordHash = "$2a$10$.5Elh8fgxypNUWhpUUr/xOa2sZm0VIaE0qWuGGl9otUfobb46T1Pq"

var staffSeq atomic.Int64

// Staff makes a staff member with role (active or not), or a superuser when role is
// "superuser", and returns its id and auth token.
func Staff(t testing.TB, app core.App, role string, active bool) (id, token string) {
	t.Helper()
	name := "staff"
	if role == "superuser" {
		name = core.CollectionNameSuperusers
	}
	col, err := app.FindCollectionByNameOrId(name)
	if err != nil {
		t.Fatal(err)
	}
	rec := core.NewRecord(col)
	if role != "superuser" {
		rec.Set("name", "Test "+role)
		rec.Set("role", role)
		rec.Set("active", active)
	}
	rec.SetEmail(fmt.Sprintf("%s-%d-%d@example.com", role, time.Now().UnixNano(), staffSeq.Add(1)))
	rec.SetRaw("password", &core.PasswordFieldValue{Hash: ReadyPasswordHash})
	if err := app.Save(rec); err != nil {
		t.Fatalf("create %s: %v", role, err)
	}
	token, err = rec.NewAuthToken()
	if err != nil {
		t.Fatal(err)
	}
	return rec.Id, token
}

// Token is the auth token of a new active staff member with role, or of a new
// superuser when role is "superuser".
func Token(t testing.TB, app core.App, role string) string {
	t.Helper()
	_, token := Staff(t, app, role, true)
	return token
}

// Call sends method path with the auth token and JSON body, returns status and body.
func (s *Server) Call(t testing.TB, method, path, token string, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	return res.StatusCode, buf.Bytes()
}
