package hooks

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/config"
)

// labUploadSeed is a multipart lab result upload as the ops UI sends it.
func labUploadSeed(fields map[string]string, pdf []byte) (contentType string, body []byte) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	if pdf != nil {
		fw, _ := w.CreateFormFile("report_pdf", "report.pdf")
		_, _ = fw.Write(pdf)
	}
	_ = w.Close()
	return w.FormDataContentType(), b.Bytes()
}

func addUpload(f *testing.F, fields map[string]string, pdf []byte) {
	ct, body := labUploadSeed(fields, pdf)
	f.Add(ct, body)
}

// FuzzLabResultUpload feeds POST /api/ops/batches/{id}/lab-results bodies (multipart
// with the report PDF, or JSON) to the reading of their fields. It never panics;
// anything it refuses is an input error (a 400 that names the field), never a server
// error; what it accepts is a manual entry, dated at most a day ahead, with at most
// one report file no bigger than the PDF limit (plus the byte that tells it is too big).
func FuzzLabResultUpload(f *testing.F) {
	pdf := []byte("%PDF-1.4\n% seed\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	addUpload(f, map[string]string{"lab": "ALS Food & Pharmaceutical", "salmonella": "absent", "listeria": "absent",
		"enterobacteriaceae_cfu_per_g": "10", "reported_at": "2026-11-20",
		"other_tests": `[{"name":"E. coli","result":"<10","unit":"cfu/g","limit":"1000","pass":true}]`}, pdf)
	addUpload(f, map[string]string{"lab": "Lab", "salmonella": "Detected", "reported_at": "2026-11-20T09:15:00+01:00",
		"enterobacteriaceae_cfu_per_g": "NaN"}, nil)
	addUpload(f, map[string]string{"lab": "Lab", "outcome": "pass", "other_tests": `{"name":1}`}, []byte("PK\x03\x04"))
	f.Add("application/json", []byte(`{"lab":"Lab","salmonella":"absent","listeria":null,"enterobacteriaceae_cfu_per_g":120,"other_tests":[],"reported_at":"2999-01-01"}`))
	f.Add("application/json; charset=utf-8", []byte(`[1,2]`))
	f.Add("multipart/form-data", []byte("--x\r\n"))
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"report_pdf\"; filename=\"a.pdf\"\r\n\r\n%PDF-1\r\n--x\r\nContent-Disposition: form-data; name=\"report_pdf\"; filename=\"b.pdf\"\r\n\r\n%PDF-2\r\n--x--\r\n"))
	f.Add("text/plain", []byte("lab=x"))
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := &Spine{Config: config.Config{Timezone: time.UTC}, Clock: clockwork.NewFakeClockAt(now)}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/ops/batches/b1/lab-results", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		e := &core.RequestEvent{}
		e.Request, e.Response = req, httptest.NewRecorder()
		in, err := s.readLabResultInput(e)
		if req.MultipartForm != nil {
			defer req.MultipartForm.RemoveAll()
		}
		if err != nil {
			var bad *batches.InputError
			if !errors.As(err, &bad) {
				t.Fatalf("refused with %T %v, want an input error", err, err)
			}
			return
		}
		if in.Source != batches.SourceManual {
			t.Fatalf("source %q", in.Source)
		}
		if in.ReportedAt.After(now.Add(24 * time.Hour)) {
			t.Fatalf("reported_at %v is in the future", in.ReportedAt)
		}
		if in.ReportPDF != nil && len(in.ReportPDF.Data) > batches.MaxPDFBytes+1 {
			t.Fatalf("report of %d bytes", len(in.ReportPDF.Data))
		}
	})
}
