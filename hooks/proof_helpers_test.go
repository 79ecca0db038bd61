package hooks_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/sqlstore"
)

// proofFixture is one batch as the proof tests seed it: written with plain SQL, as the
// batch and lab-result actions will, so the record hooks of those features do not
// rewrite it.
type proofFixture struct {
	BatchID, PublicID, Code, ProductID string
	LabResultID                        string
	// Report is the PDF stored as the lab result's report, nil when none.
	Report []byte
	// CustomerID, OrderID and Email belong to a customer who was allocated units of the
	// batch: personal data that must never reach a proof page.
	CustomerID, OrderID, Email string
}

type proofSeed struct {
	Status string // qa_hold | released | failed | recalled
	// LabResult adds a lab result; Entero is its Enterobacteriaceae count, Salmonella
	// absent or detected.
	LabResult  bool
	Salmonella string
	Entero     float64
	Report     bool
	Product    string // product name; "Chicken & Tripe <Raw>" when empty
}

var proofSeq atomic.Int64

// seedProofBatch writes a product, a batch in seed.Status produced on 21 Nov 2026 at
// 09:30 UTC with use-by 21 Dec 2026, optionally its lab result and report, and an order
// by a customer that was allocated units of it.
func seedProofBatch(t *testing.T, app core.App, seed proofSeed) proofFixture {
	t.Helper()
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	name := seed.Product
	if name == "" {
		name = "Chicken & Tripe <Raw>"
	}
	db := app.DB()
	must := func(id string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	f := proofFixture{PublicID: randomPublicID(t)}
	f.ProductID = must(sqlstore.Insert(db, "products", now, dbx.Params{
		"sku": "PR-CT-" + f.PublicID[:6], "name": name, "active": true, "unit": "pouch",
		"storage_instructions": "Keep frozen at -18 °C or below",
	}))
	f.Code = fmt.Sprintf("PR-261121-%03d", proofSeq.Add(1))
	f.BatchID = must(sqlstore.Insert(db, "batches", now, dbx.Params{
		"code": f.Code, "product": f.ProductID, "status": seed.Status, "public_id": f.PublicID,
		"produced_at": "2026-11-21 09:30:00.000Z", "expiry_date": "2026-12-21 00:00:00.000Z",
		"quantity_units": 500, "kg_produced": 250, "notes": "internal note: supplier Acme Meats",
		"created_by": "staff:ops-lead@opspine.test",
	}))
	if seed.LabResult {
		salmonella := seed.Salmonella
		if salmonella == "" {
			salmonella = "absent"
		}
		outcome := "pass"
		if seed.Status == "failed" {
			outcome = "fail"
		}
		cols := dbx.Params{
			"batch": f.BatchID, "lab": "Eurofins Food Testing UK", "salmonella": salmonella, "listeria": "absent",
			"enterobacteriaceae_tested": true, "enterobacteriaceae_cfu_per_g": seed.Entero,
			"other_tests": `[{"name":"Total viable count","result":12000,"unit":"cfu/g","limit":500000,"pass":true}]`,
			"outcome":     outcome, "source": "manual", "confidence": 1, "reported_at": "2026-11-24 00:00:00.000Z",
			"entered_by": "staff:qa-manager@opspine.test",
		}
		if seed.Report {
			cols["report_pdf"] = "lab_report_abc123.pdf"
		}
		f.LabResultID = must(sqlstore.Insert(db, "lab_results", now, cols))
		if seed.Report {
			f.Report = []byte("%PDF-1.4\n% lab report of " + f.Code + "\n%%EOF\n")
			col, err := app.FindCachedCollectionByNameOrId("lab_results")
			if err != nil {
				t.Fatal(err)
			}
			fsys, err := app.NewFilesystem()
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			if err := fsys.Upload(f.Report, col.BaseFilesPath()+"/"+f.LabResultID+"/lab_report_abc123.pdf"); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.Email = "jane.proof" + f.PublicID[:4] + "@example.com"
	f.CustomerID = must(sqlstore.Insert(db, "customers", now, dbx.Params{
		"email": f.Email, "first_name": "Jane", "last_name": "Proofreader", "phone": "+447700900123",
	}))
	f.OrderID = must(sqlstore.Insert(db, "orders", now, dbx.Params{
		"customer": f.CustomerID, "email": f.Email, "order_number": "PR-" + f.PublicID[:5], "shopify_order_id": f.PublicID, "status": "paid", "currency": "GBP",
	}))
	itemID := must(sqlstore.Insert(db, "order_items", now, dbx.Params{"order": f.OrderID, "shopify_line_item_id": f.PublicID}))
	must(sqlstore.Insert(db, "allocations", now, dbx.Params{
		"batch": f.BatchID, "order": f.OrderID, "order_item": itemID, "quantity": 2, "status": "dispatched",
	}))
	return f
}

// randomPublicID is a public id of the form the proof portal accepts (20 characters of
// [a-z0-9]); hex keeps it unlike any base32 id a real batch gets.
func randomPublicID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// proofGet fetches path from the server with headers, returning the answer and its body.
func proofGet(t *testing.T, base, path string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

var (
	cspNonceRe = regexp.MustCompile(`'nonce-([A-Za-z0-9+/_=-]+)'`)
	tagNonceRe = regexp.MustCompile(`<(style|script)\b([^>]*)>`)
	attrNonce  = regexp.MustCompile(`\bnonce="([^"]*)"`)
)

// checkNonce asserts that the CSP names one nonce for styles and scripts, that every
// <style> and <script> of body carries exactly that nonce, and returns it.
func checkNonce(t *testing.T, csp, body string) string {
	t.Helper()
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows unsafe sources: %s", csp)
	}
	for _, d := range []string{"default-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'", "img-src 'self' data:"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP lacks %q: %s", d, csp)
		}
	}
	m := cspNonceRe.FindAllStringSubmatch(csp, -1)
	if len(m) != 2 || m[0][1] != m[1][1] || !strings.Contains(csp, "style-src 'nonce-") || !strings.Contains(csp, "script-src 'nonce-") {
		t.Fatalf("CSP should give style-src and script-src one nonce: %s", csp)
	}
	nonce := m[0][1]
	if len(nonce) < 22 {
		t.Errorf("nonce %q is shorter than 128 bits", nonce)
	}
	tags := tagNonceRe.FindAllStringSubmatch(body, -1)
	kinds := map[string]int{}
	for _, tag := range tags {
		kinds[tag[1]]++
		a := attrNonce.FindStringSubmatch(tag[2])
		if a == nil || a[1] != nonce {
			t.Errorf("<%s%s> does not carry the response's nonce %q", tag[1], tag[2], nonce)
		}
	}
	if kinds["style"] == 0 || kinds["script"] == 0 {
		t.Errorf("page has %d <style> and %d <script>; want both", kinds["style"], kinds["script"])
	}
	if regexp.MustCompile(`\sstyle=`).MatchString(body) {
		t.Errorf("page uses a style attribute, which the CSP refuses")
	}
	return nonce
}
