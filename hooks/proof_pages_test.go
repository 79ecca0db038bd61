package hooks_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"html"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/sqlstore"
	"github.com/opspine/opspine/app/testkit"
)

var proofEnv = map[string]string{"OPSPINE_BRAND_NAME": "Protocol Raw", "OPSPINE_TIMEZONE": "Europe/London"}

// proofBatches seeds one batch in each state on a fresh server.
type proofBatches struct {
	s                                          *testkit.Server
	released, failed, held, recalled, noReport proofFixture
	heldWithResults                            proofFixture
}

func seedProofStates(t *testing.T) proofBatches {
	t.Helper()
	s := start(t, proofEnv)
	return proofBatches{
		s:               s,
		released:        seedProofBatch(t, s.App, proofSeed{Status: "released", LabResult: true, Entero: 40, Report: true}),
		failed:          seedProofBatch(t, s.App, proofSeed{Status: "failed", LabResult: true, Salmonella: "detected", Entero: 1200, Report: true}),
		held:            seedProofBatch(t, s.App, proofSeed{Status: "qa_hold"}),
		heldWithResults: seedProofBatch(t, s.App, proofSeed{Status: "qa_hold", LabResult: true, Entero: 40, Report: true}),
		recalled:        seedProofBatch(t, s.App, proofSeed{Status: "recalled", LabResult: true, Entero: 40, Report: true}),
		noReport:        seedProofBatch(t, s.App, proofSeed{Status: "released", LabResult: true, Entero: 40}),
	}
}

// TestProofPageAnswers checks what a customer's browser gets for every batch state,
// for unknown and malformed ids, and that every answer carries the security headers.
func TestProofPageAnswers(t *testing.T) {
	b := seedProofStates(t)
	unknown := "0123456789abcdef0123"
	cases := []struct {
		name     string
		path     string
		status   int
		contains []string
		absent   []string
	}{
		{"released shows PASS, every test and the report link", "/proof/" + b.released.PublicID, 200,
			[]string{"Protocol Raw", "PASS", "Chicken &amp; Tripe &lt;Raw&gt;", b.released.Code, "21 Nov 2026", "21 Dec 2026",
				"Keep frozen at -18 °C or below", "Salmonella", "Absent in 25 g", "Enterobacteriaceae", "40 cfu/g", "≤ 300 cfu/g",
				"Listeria monocytogenes", "Total viable count", "12000 cfu/g", "≤ 500000 cfu/g", "Eurofins Food Testing UK",
				`href="/proof/` + b.released.PublicID + `/report.pdf"`},
			[]string{"FAIL", "AWAITING", "RECALLED", "<Raw>"}},
		{"released without a report has no link", "/proof/" + b.noReport.PublicID, 200,
			[]string{"PASS", "Salmonella"}, []string{"report.pdf", "Download the lab report"}},
		{"failed shows FAIL and the failing tests, no link", "/proof/" + b.failed.PublicID, 200,
			[]string{"FAIL", "Detected", "1200 cfu/g", "test-fail", "do not feed it"},
			[]string{"PASS", "report.pdf", "Download the lab report"}},
		{"on hold awaits results and shows none yet", "/proof/" + b.held.PublicID, 200,
			[]string{"AWAITING RESULTS", b.held.Code, "21 Nov 2026", "not sold until every test has passed"},
			[]string{"PASS", "FAIL", "report.pdf", "Lab results"}},
		{"on hold with results still shows no results", "/proof/" + b.heldWithResults.PublicID, 200,
			[]string{"AWAITING RESULTS"}, []string{"Salmonella", "report.pdf", "Eurofins"}},
		{"recalled says do not feed, no link", "/proof/" + b.recalled.PublicID, 200,
			[]string{"RECALLED", "Do not feed this product.", "stop feeding it now"},
			[]string{"PASS", "report.pdf"}},
		{"unknown id is a friendly 404", "/proof/" + unknown, 404,
			[]string{"We couldn’t find that batch", "Protocol Raw"}, []string{"PASS", "FAIL"}},
		{"uppercase id is a 404", "/proof/" + strings.ToUpper(b.released.PublicID), 404, []string{"We couldn’t find that batch"}, nil},
		{"id one short is a 404", "/proof/" + b.released.PublicID[:19], 404, []string{"We couldn’t find that batch"}, nil},
		{"id one long is a 404", "/proof/" + b.released.PublicID + "a", 404, []string{"We couldn’t find that batch"}, nil},
		{"quote in id is a 404", "/proof/" + b.released.PublicID[:17] + "%27--", 404, []string{"We couldn’t find that batch"}, nil},
		{"unicode in id is a 404", "/proof/" + b.released.PublicID[:18] + "%C3%A9", 404, []string{"We couldn’t find that batch"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := proofGet(t, b.s.URL, c.path, nil)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d:\n%s", res.StatusCode, c.status, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			checkNonce(t, res.Header.Get("Content-Security-Policy"), body)
			for h, want := range map[string]string{
				"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
				"Cache-Control": "public, max-age=60", "X-Frame-Options": "DENY",
			} {
				if got := res.Header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			for _, want := range c.contains {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			for _, bad := range c.absent {
				if strings.Contains(body, bad) {
					t.Errorf("page shows %q", bad)
				}
			}
			assertNoInternals(t, body, b)
		})
	}
}

// assertNoInternals fails when text holds any record id or personal or internal data
// of the seeded batches.
func assertNoInternals(t *testing.T, text string, b proofBatches) {
	t.Helper()
	text = html.UnescapeString(text)
	for _, f := range []proofFixture{b.released, b.failed, b.held, b.heldWithResults, b.recalled, b.noReport} {
		for what, v := range map[string]string{
			"batch record id": f.BatchID, "product record id": f.ProductID, "lab result record id": f.LabResultID,
			"customer record id": f.CustomerID, "order record id": f.OrderID, "customer email": f.Email,
		} {
			if v != "" && strings.Contains(text, v) {
				t.Errorf("answer shows the %s %q", what, v)
			}
		}
	}
	for _, secret := range []string{"Proofreader", "+447700900123", "Acme Meats", "ops-lead@", "qa-manager@", "lab_report_abc123", "@example.com"} {
		if strings.Contains(text, secret) {
			t.Errorf("answer shows internal or personal data %q", secret)
		}
	}
}

// TestProofJSONShape checks GET /api/proof/{id}: the same view as the page, exactly the
// documented keys, and no ids or personal data.
func TestProofJSONShape(t *testing.T) {
	b := seedProofStates(t)
	res, body := proofGet(t, b.s.URL, "/api/proof/"+b.released.PublicID, nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Cache-Control") != "public, max-age=60" {
		t.Errorf("headers %v", res.Header)
	}
	assertNoInternals(t, body, b)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "batch_code brand headline lab message produced_on product public_id report_url reported_on status storage tests use_by verdict"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("keys\n %s\nwant\n %s", got, want)
	}
	var v struct {
		Brand      string `json:"brand"`
		PublicID   string `json:"public_id"`
		BatchCode  string `json:"batch_code"`
		Product    string `json:"product"`
		ProducedOn string `json:"produced_on"`
		UseBy      string `json:"use_by"`
		Status     string `json:"status"`
		Verdict    string `json:"verdict"`
		Headline   string `json:"headline"`
		ReportURL  string `json:"report_url"`
		Tests      []struct {
			Name   string `json:"name"`
			Result string `json:"result"`
			Limit  string `json:"limit"`
			Pass   *bool  `json:"pass"`
		} `json:"tests"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	got := []string{v.Brand, v.PublicID, v.BatchCode, v.Product, v.ProducedOn, v.UseBy, v.Status, v.Verdict, v.Headline, v.ReportURL}
	exp := []string{"Protocol Raw", b.released.PublicID, b.released.Code, "Chicken & Tripe <Raw>", "2026-11-21", "2026-12-21",
		"released", "pass", "PASS", "/proof/" + b.released.PublicID + "/report.pdf"}
	for i := range exp {
		if got[i] != exp[i] {
			t.Errorf("field %d: %q, want %q", i, got[i], exp[i])
		}
	}
	if len(v.Tests) != 4 || v.Tests[0].Name != "Salmonella" || v.Tests[1].Limit != "≤ 300 cfu/g" || v.Tests[1].Pass == nil || !*v.Tests[1].Pass {
		t.Errorf("tests %+v", v.Tests)
	}

	for _, c := range []struct {
		id      string
		verdict string
		report  bool
	}{{b.failed.PublicID, "fail", false}, {b.held.PublicID, "awaiting_results", false}, {b.recalled.PublicID, "recalled", false}} {
		res, body := proofGet(t, b.s.URL, "/api/proof/"+c.id, nil)
		var got struct {
			Verdict   string `json:"verdict"`
			ReportURL string `json:"report_url"`
		}
		if res.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil || got.Verdict != c.verdict || (got.ReportURL != "") != c.report {
			t.Errorf("%s: %d %s, want verdict %s", c.id, res.StatusCode, body, c.verdict)
		}
		assertNoInternals(t, body, b)
	}
	for _, id := range []string{"0123456789abcdef0123", "NOT-AN-ID", "x"} {
		res, body := proofGet(t, b.s.URL, "/api/proof/"+id, nil)
		if res.StatusCode != 404 || !strings.Contains(body, "No batch has this id") {
			t.Errorf("%s: %d %s, want a JSON 404", id, res.StatusCode, body)
		}
	}
}

// TestProofReportDownload checks that the lab report is served for a released batch
// only, as a PDF download named after the batch code.
func TestProofReportDownload(t *testing.T) {
	b := seedProofStates(t)
	res, body := proofGet(t, b.s.URL, "/proof/"+b.released.PublicID+"/report.pdf", nil)
	if res.StatusCode != 200 || body != string(b.released.Report) {
		t.Fatalf("released: %d %q", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="`+b.released.Code+`-lab-report.pdf"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if res.Header.Get("Cache-Control") != "public, max-age=60" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", res.Header)
	}
	for name, id := range map[string]string{
		"failed": b.failed.PublicID, "on hold with a report": b.heldWithResults.PublicID, "recalled": b.recalled.PublicID,
		"released without report": b.noReport.PublicID, "unknown": "0123456789abcdef0123", "malformed": "..%2F..%2Fetc",
	} {
		res, body := proofGet(t, b.s.URL, "/proof/"+id+"/report.pdf", nil)
		if res.StatusCode != 404 || strings.Contains(body, "%PDF") {
			t.Errorf("%s: %d, want 404 without the PDF", name, res.StatusCode)
		}
	}
}

// TestProofCSPNonceIsFreshPerRequest checks that two answers of the same page carry
// different nonces, each matching its own tags.
func TestProofCSPNonceIsFreshPerRequest(t *testing.T) {
	b := seedProofStates(t)
	seen := map[string]bool{}
	for _, path := range []string{"/proof/" + b.released.PublicID, "/proof/" + b.released.PublicID, "/proof/" + b.recalled.PublicID, "/proof/00000000000000000000"} {
		res, body := proofGet(t, b.s.URL, path, nil)
		nonce := checkNonce(t, res.Header.Get("Content-Security-Policy"), body)
		if seen[nonce] {
			t.Errorf("nonce %q served twice", nonce)
		}
		seen[nonce] = true
	}
}

type proofEventRow struct {
	Batch        string `db:"batch"`
	PublicID     string `db:"public_id"`
	Event        string `db:"event"`
	ReferrerHost string `db:"referrer_host"`
	DeviceType   string `db:"device_type"`
	Created      string `db:"created"`
}

// TestProofPageEventsAreWritten checks one proof_page_events row per answer, with the
// referrer's host only, the device class, and nothing that identifies the visitor.
func TestProofPageEventsAreWritten(t *testing.T) {
	b := seedProofStates(t)
	iphone := "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	ipad := "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
	desktop := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	referer := "https://l.instagram.com:443/?u=https%3A%2F%2Fshop.example%2F&e=AT0secret-token"
	unknown := "0123456789abcdef0123"
	requests := []struct {
		path    string
		headers map[string]string
	}{
		{"/proof/" + b.released.PublicID, map[string]string{"User-Agent": iphone, "Referer": referer, "X-Forwarded-For": "203.0.113.7"}},
		{"/api/proof/" + b.released.PublicID, map[string]string{"User-Agent": desktop}},
		{"/proof/" + b.released.PublicID + "/report.pdf", map[string]string{"User-Agent": ipad, "Referer": "https://proof.example.com/proof/" + b.released.PublicID}},
		{"/proof/" + unknown, map[string]string{"User-Agent": "curl/8.5.0"}},
		{"/proof/" + b.failed.PublicID + "/report.pdf", map[string]string{"User-Agent": desktop}},
		{"/proof/NOT-A-VALID-ID", map[string]string{"User-Agent": desktop}},
		{"/api/proof/x", map[string]string{"User-Agent": desktop}},
	}
	for _, r := range requests {
		proofGet(t, b.s.URL, r.path, r.headers)
	}
	rows := waitProofEvents(t, b.s, 5)
	key := func(r proofEventRow) string {
		return strings.Join([]string{r.Event, r.Batch, r.PublicID, r.ReferrerHost, r.DeviceType}, "|")
	}
	var got []string
	for _, r := range rows {
		got = append(got, key(r))
		if r.Created != sqlstore.FormatTime(b.s.Clock.Now()) {
			t.Errorf("event %s created %q, want the server clock's time", r.Event, r.Created)
		}
	}
	want := []string{
		key(proofEventRow{Event: "view", Batch: b.released.BatchID, PublicID: b.released.PublicID, ReferrerHost: "l.instagram.com", DeviceType: "mobile"}),
		key(proofEventRow{Event: "json", Batch: b.released.BatchID, PublicID: b.released.PublicID, DeviceType: "desktop"}),
		key(proofEventRow{Event: "report_download", Batch: b.released.BatchID, PublicID: b.released.PublicID, ReferrerHost: "proof.example.com", DeviceType: "tablet"}),
		key(proofEventRow{Event: "not_found", PublicID: unknown, DeviceType: "bot"}),
		key(proofEventRow{Event: "not_found", Batch: b.failed.BatchID, PublicID: b.failed.PublicID, DeviceType: "desktop"}),
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// nothing that identifies a visitor is stored, in any column
	var dump []string
	if err := b.s.App.DB().NewQuery(`SELECT json_object('id', id, 'batch', batch, 'public_id', public_id, 'event', event,
		'referrer_host', referrer_host, 'device_type', device_type, 'created', created, 'updated', updated) FROM proof_page_events`).Column(&dump); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(dump, "\n")
	for _, leak := range []string{"127.0.0.1", "203.0.113.7", "iPhone", "Mozilla", "curl", "AT0secret", "instagram.com:443", "/?u="} {
		if strings.Contains(all, leak) {
			t.Errorf("proof_page_events stores %q:\n%s", leak, all)
		}
	}
	var cols []string
	if err := b.s.App.DB().NewQuery(`SELECT name FROM pragma_table_info('proof_page_events')`).Column(&cols); err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if strings.Contains(c, "ip") || strings.Contains(c, "agent") {
			t.Errorf("proof_page_events has a column %q", c)
		}
	}
}

// waitProofEvents waits until the recorder has written n rows (it writes after the
// answer), then checks that no more arrive.
func waitProofEvents(t *testing.T, s *testkit.Server, n int) []proofEventRow {
	t.Helper()
	read := func() []proofEventRow {
		var rows []proofEventRow
		if err := s.App.DB().NewQuery(`SELECT batch, public_id, event, referrer_host, device_type, created FROM proof_page_events`).All(&rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if rows := read(); len(rows) >= n {
			time.Sleep(100 * time.Millisecond)
			if rows = read(); len(rows) != n {
				t.Fatalf("%d events written, want %d", len(rows), n)
			}
			return rows
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d events written after 10s, want %d", len(read()), n)
	return nil
}

// TestProofEventsFlushOnShutdown checks that events still queued when opspine stops
// are written, not lost: the recorder drains on terminate, before the database closes.
func TestProofEventsFlushOnShutdown(t *testing.T) {
	s := start(t, proofEnv)
	f := seedProofBatch(t, s.App, proofSeed{Status: "released", LabResult: true, Entero: 10})
	for range 50 {
		if res, _ := proofGet(t, s.URL, "/proof/"+f.PublicID, nil); res.StatusCode != http.StatusOK {
			t.Fatal(res.StatusCode)
		}
	}
	var n int
	// what Cleanup's terminate does, minus resetting the app: stop the spine and the recorder
	if err := s.App.OnTerminate().Trigger(&core.TerminateEvent{App: s.App}, func(*core.TerminateEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.App.DB().NewQuery(`SELECT COUNT(*) FROM proof_page_events WHERE event = 'view'`).Row(&n); err != nil {
		t.Fatal(err)
	}
	if n != 50 {
		t.Errorf("%d view events after shutdown, want 50", n)
	}
}

// TestMalformedProofIDsNeverReachTheDatabase checks that an id that cannot be a public
// id is answered 404 without a single statement, on every proof route.
func TestMalformedProofIDsNeverReachTheDatabase(t *testing.T) {
	s := start(t, proofEnv)
	// the pipeline's workers read pending deliveries at start; stop them before the
	// log functions are set under them (they stay set: the app ends with the test)
	s.Spine.Pipeline.Stop()
	var mu sync.Mutex
	var statements []string
	for _, b := range []dbx.Builder{s.App.ConcurrentDB(), s.App.NonconcurrentDB()} {
		db := b.(*dbx.DB)
		db.QueryLogFunc = func(_ context.Context, _ time.Duration, q string, _ *sql.Rows, _ error) {
			mu.Lock()
			statements = append(statements, q)
			mu.Unlock()
		}
		db.ExecLogFunc = func(_ context.Context, _ time.Duration, q string, _ sql.Result, _ error) {
			mu.Lock()
			statements = append(statements, q)
			mu.Unlock()
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(statements)
	}
	for _, id := range []string{"x", "ABCDEFGHIJKLMNOPQRST", "abcdefghijklmnopqrs%27", strings.Repeat("a", 5000), "%00%00%00"} {
		for _, path := range []string{"/proof/" + id, "/api/proof/" + id, "/proof/" + id + "/report.pdf"} {
			if res, _ := proofGet(t, s.URL, path, nil); res.StatusCode != 404 {
				t.Errorf("%s: %d, want 404", path, res.StatusCode)
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // an event write would come after the answer
	if n := count(); n != 0 {
		t.Errorf("malformed ids ran %d statements:\n%s", n, strings.Join(statements, "\n"))
	}
	// the counter sees a well-formed id's lookup
	proofGet(t, s.URL, "/proof/0123456789abcdef0123", nil)
	if count() == 0 {
		t.Error("a well-formed id ran no statement: the counter does not work")
	}
}
