package hooks_test

import (
	"bytes"
	"encoding/json"
	"image"
	_ "image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/testkit"
)

// Helpers of the batch creation tests (batches_*_test.go).

// batchT0 is a winter morning: London is on GMT, so the business day is the UTC day.
var batchT0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

const (
	batchPublicURL = "https://proof.protocol-raw.test"
	batchCopacker  = "production@copacker.test"
)

// startBatches runs opspine with a public URL, a co-packer address and prefix B.
func startBatches(t *testing.T, env map[string]string) *testkit.Server {
	t.Helper()
	base := map[string]string{"OPSPINE_BRAND_NAME": "Protocol Raw", "OPSPINE_PUBLIC_URL": batchPublicURL,
		"OPSPINE_COPACKER_EMAIL": batchCopacker, "OPSPINE_TIMEZONE": "Europe/London"}
	for k, v := range env {
		base[k] = v
	}
	return testkit.StartServer(t, testkit.Config(t, base), batchT0)
}

// batchProduct saves frozen beef in 0.5 kg pouches with 180 days' shelf life and
// returns its id.
func batchProduct(t *testing.T, app core.App, sku string) string {
	t.Helper()
	col, err := app.FindCollectionByNameOrId("products")
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecord(col, map[string]any{"sku": sku, "name": "Beef Complete", "active": true, "unit": "pouch",
		"kg_per_unit": 0.5, "shelf_life_days": 180, "storage_temp_min_c": -25, "storage_temp_max_c": -18})
	if err := app.Save(rec); err != nil {
		t.Fatal(err)
	}
	return rec.Id
}

// createdBatch is the answer of POST /api/ops/batches.
type createdBatch struct {
	ID         string `json:"id"`
	Code       string `json:"code"`
	PublicID   string `json:"public_id"`
	ProofURL   string `json:"proof_url"`
	Status     string `json:"status"`
	Product    struct{ ID, SKU, Name string }
	ProducedOn string  `json:"produced_on"`
	UseBy      string  `json:"use_by"`
	Units      int     `json:"quantity_units"`
	Kg         float64 `json:"kg_produced"`
	CreatedBy  string  `json:"created_by"`
	Email      *struct {
		ID string `json:"id"`
		To string `json:"to"`
	} `json:"copacker_email"`
	Links struct {
		LabelPDF string `json:"label_pdf"`
		QRImage  string `json:"qr_image"`
	} `json:"links"`
}

// batchAPIError is PocketBase's error answer.
type batchAPIError struct {
	Message string                                    `json:"message"`
	Data    map[string]struct{ Code, Message string } `json:"data"`
}

// batchGet fetches path with token; it returns the status, content type and body.
func batchGet(t *testing.T, s *testkit.Server, path, token string) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), b
}

// batchMultipart posts fields as multipart/form-data, as the admin UI does for a
// collection with file fields.
func batchMultipart(t *testing.T, s *testkit.Server, path, token string, fields map[string]string) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// batchWrites counts the rows a batch creation writes.
func batchWrites(t *testing.T, app core.App) map[string]int {
	t.Helper()
	return map[string]int{
		"batches": testkit.Count(t, app, "batches", "", nil),
		"history": testkit.Count(t, app, "batch_status_history", "", nil),
		"events":  testkit.Count(t, app, "ops_events", "entity_type = 'batch'", nil),
		"emails":  testkit.Count(t, app, "email_outbox", "", nil),
	}
}

func batchDecode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// batchQRFromPDF renders the first page of a PDF at 300 dpi with poppler's pdftoppm, as a
// printer would, and decodes the QR code on it.
func batchQRFromPDF(t *testing.T, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "label.pdf")
	os.WriteFile(in, pdf, 0o600)
	if b, err := exec.Command(batchPoppler(t, "pdftoppm"), "-r", "300", "-png", "-singlefile", in, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, b)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "page.png"))
	if err != nil {
		t.Fatal(err)
	}
	return batchQRFromPNG(t, raw)
}

// batchQRFromPNG reads the QR code in a PNG.
func batchQRFromPNG(t *testing.T, pngBytes []byte) string {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("no QR code found: %v", err)
	}
	return res.GetText()
}

// batchPDFText is the text of a PDF as poppler's pdftotext reads it, spaces collapsed.
func batchPDFText(t *testing.T, pdf []byte) string {
	t.Helper()
	in := filepath.Join(t.TempDir(), "label.pdf")
	os.WriteFile(in, pdf, 0o600)
	b, err := exec.Command(batchPoppler(t, "pdftotext"), "-enc", "UTF-8", in, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

func batchPoppler(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is missing: install Debian's poppler-utils (apt-get install poppler-utils)", tool)
	}
	return p
}
