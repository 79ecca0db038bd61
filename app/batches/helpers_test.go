package batches_test

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/batches"
)

// t0 is a winter morning: London is on GMT.
var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

const publicURL = "https://proof.protocol-raw.test"

// testDeps are the defaults of the configuration, a fixed key and a clock stopped at now.
func testDeps(now time.Time) batches.Deps {
	return batches.Deps{
		Prefix:      "B",
		Timezone:    london,
		PublicURL:   publicURL,
		PublicIDKey: []byte("test-key-0123456789abcdef0123456789abcdef"),
		Label:       batches.LabelSize{WidthMM: 62, HeightMM: 29},
		Brand:       "Protocol Raw",
		Now:         func() time.Time { return now },
	}
}

// addProduct saves a product: frozen beef in 0.5 kg pouches, 180 days' shelf life,
// unless fields say otherwise.
func addProduct(t testing.TB, app core.App, sku string, fields map[string]any) *core.Record {
	t.Helper()
	col, err := app.FindCollectionByNameOrId("products")
	if err != nil {
		t.Fatal(err)
	}
	rec := core.NewRecord(col)
	base := map[string]any{"sku": sku, "name": "Beef Complete", "active": true, "unit": "pouch",
		"kg_per_unit": 0.5, "shelf_life_days": 180, "storage_temp_min_c": -25, "storage_temp_max_c": -18}
	for k, v := range fields {
		base[k] = v
	}
	for k, v := range base {
		rec.Set(k, v)
	}
	if err := app.Save(rec); err != nil {
		t.Fatalf("save product %s: %v", sku, err)
	}
	return rec
}

func intp(n int) *int           { return &n }
func floatp(f float64) *float64 { return &f }

// pdfQR renders the first page of pdf at 300 dpi with poppler's pdftoppm, as a
// printer would, and decodes the QR code on it.
func pdfQR(t testing.TB, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "label.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "page")
	if b, err := exec.Command(popplerTool(t, "pdftoppm"), "-r", "300", "-png", "-singlefile", in, out).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, b)
	}
	raw, err := os.ReadFile(out + ".png")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("no QR code found on the rendered label: %v", err)
	}
	return res.GetText()
}

// pdfText is the text of pdf as poppler's pdftotext reads it.
func pdfText(t testing.TB, pdf []byte) string {
	t.Helper()
	in := filepath.Join(t.TempDir(), "label.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command(popplerTool(t, "pdftotext"), "-enc", "UTF-8", in, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(b)
}

func popplerTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: install Debian's poppler-utils (apt-get install poppler-utils)", name)
	}
	return p
}
