package hooks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/testkit"
)

// Helpers of the lab result, override and recall tests. Batches are made directly with
// the record API (status qa_hold, a code, a public id, a product), as batch creation
// would leave them.

var labSeq atomic.Int64

// labPDF is a small PDF with distinct content (so a distinct SHA-256) per tag.
func labPDF(tag string) []byte {
	return []byte("%PDF-1.4\n% " + tag + "\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
}

// labBatch makes a batch on qa_hold and returns its id.
func labBatch(t *testing.T, s *testkit.Server, code string) string {
	t.Helper()
	n := labSeq.Add(1)
	product := addProduct(t, s, fmt.Sprintf("RAW-BEEF-%d", n))
	col, err := s.App.FindCollectionByNameOrId("batches")
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecord(col, map[string]any{
		"code": code, "product": product, "produced_at": t0.Add(-72 * time.Hour), "quantity_units": 500,
		"status": "qa_hold", "qa_hold_at": t0.Add(-72 * time.Hour), "public_id": fmt.Sprintf("pub%dxxxxxxxxxxxx", n),
	})
	if err := s.App.Save(rec); err != nil {
		t.Fatalf("make batch %s: %v", code, err)
	}
	return rec.Id
}

// labFile is a file part of a multipart request.
type labFile struct {
	field, name string
	data        []byte
}

// labMultipart sends a multipart request with fields and files; it returns the status and body.
func labMultipart(t *testing.T, s *testkit.Server, path, token string, fields map[string]string, files ...labFile) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		part, err := w.CreateFormFile(f.field, f.name)
		if err != nil {
			t.Fatal(err)
		}
		part.Write(f.data)
	}
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(res.Body)
	return res.StatusCode, out.Bytes()
}

// labResultAnswer is the answer of POST /api/ops/batches/{id}/lab-results.
type labResultAnswer struct {
	LabResult struct {
		ID            string  `json:"id"`
		Outcome       string  `json:"outcome"`
		OutcomeReason string  `json:"outcome_reason"`
		EnteredBy     string  `json:"entered_by"`
		Source        string  `json:"source"`
		Confidence    float64 `json:"confidence"`
		PDFSHA256     string  `json:"pdf_sha256"`
		ReportPDF     string  `json:"report_pdf"`
	} `json:"lab_result"`
	Outcome       string `json:"outcome"`
	OutcomeReason string `json:"outcome_reason"`
	Duplicate     bool   `json:"duplicate"`
	Batch         struct {
		Status         string `json:"status"`
		PreviousStatus string `json:"previous_status"`
		StatusChanged  bool   `json:"status_changed"`
	} `json:"batch"`
}

func decodeLab(t *testing.T, body []byte) labResultAnswer {
	t.Helper()
	var a labResultAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return a
}

// postLabJSON records a lab result as JSON and expects want.
func postLabJSON(t *testing.T, s *testkit.Server, batchID, token, body string, want int) labResultAnswer {
	t.Helper()
	code, out := s.Call(t, "POST", "/api/ops/batches/"+batchID+"/lab-results", token, body)
	if code != want {
		t.Fatalf("lab result %s: %d %s, want %d", body, code, out, want)
	}
	if code >= 300 {
		return labResultAnswer{}
	}
	return decodeLab(t, out)
}

// batchStatus reads a batch's status.
func batchStatus(t *testing.T, s *testkit.Server, id string) string {
	t.Helper()
	rec, err := s.App.FindRecordById("batches", id)
	if err != nil {
		t.Fatal(err)
	}
	return rec.GetString("status")
}

// writesOfBatch counts every row a batch action writes, to prove a refusal wrote nothing.
func writesOfBatch(t *testing.T, app core.App, batchID string) map[string]int {
	t.Helper()
	p := dbx.Params{"b": batchID}
	return map[string]int{
		"history":   testkit.Count(t, app, "batch_status_history", "batch = {:b}", p),
		"lab":       testkit.Count(t, app, "lab_results", "batch = {:b}", p),
		"overrides": testkit.Count(t, app, "manual_override_audit", "batch = {:b}", p),
		"events":    testkit.Count(t, app, "ops_events", "entity_id = {:b}", p),
		"alerts":    testkit.Count(t, app, "alerts", "", nil),
		"released":  testkit.Count(t, app, "batches", "id = {:b} AND released_at != ''", p),
	}
}
