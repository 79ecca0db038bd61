package batches_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/opspine/opspine/app/batches"
)

// The label a co-packer prints must scan to the batch's proof page and show the
// product, code, dates and storage line, at any configured size.
func TestLabelPDFScansToTheProofURLAndReadsBack(t *testing.T) {
	produced := time.Date(2026, 11, 21, 0, 0, 0, 0, london)
	cases := []struct {
		name  string
		size  batches.LabelSize
		label batches.Label
		want  []string
	}{
		{"default 62x29", batches.LabelSize{WidthMM: 62, HeightMM: 29}, batches.Label{
			ProductName: "Beef Complete", BatchCode: "B-261121-001", ProducedOn: produced,
			UseBy: produced.AddDate(0, 0, 180), Storage: "Store between -25°C and -18°C",
		}, []string{"Beef Complete", "B-261121-001", "Produced 21 Nov 2026", "Use by 20 May 2027", "Store between -25°C and -18°C"}},
		{"large 100x50, accents", batches.LabelSize{WidthMM: 100, HeightMM: 50}, batches.Label{
			ProductName: "Łosoś & Wołowina – Cœur", BatchCode: "PR-261121-012", ProducedOn: produced,
			UseBy: produced.AddDate(0, 0, 7), Storage: "Keep frozen at -18°C or below. Thaw in the fridge.",
		}, []string{"Łosoś & Wołowina – Cœur", "PR-261121-012", "Produced 21 Nov 2026", "Use by 28 Nov 2026", "Keep frozen at -18°C or below."}},
		{"portrait 40x60, long name", batches.LabelSize{WidthMM: 40, HeightMM: 60}, batches.Label{
			ProductName: "Chicken, Turkey and Duck Working Dog Complete with Green Tripe and Bone", BatchCode: "B-261121-003",
			ProducedOn: produced, UseBy: produced.AddDate(0, 0, 180), Storage: "Store at -18°C or below",
		}, []string{"Chicken", "B-261121-003", "Produced 21 Nov 2026", "Use by 20 May 2027", "Store at -18°C or below"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.label.ProofURL = publicURL + "/proof/abcdefghijklmnopqrst"
			qr, err := batches.NewQR(c.label.ProofURL)
			if err != nil {
				t.Fatal(err)
			}
			pdf, err := batches.RenderLabelPDF(c.label, qr, c.size)
			if err != nil {
				t.Fatal(err)
			}
			if got := pdfQR(t, pdf); got != c.label.ProofURL {
				t.Errorf("QR code reads %q, want %q", got, c.label.ProofURL)
			}
			text := pdfText(t, pdf)
			flat := strings.Join(strings.Fields(text), " ")
			for _, w := range c.want {
				if !strings.Contains(flat, w) {
					t.Errorf("label text lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

func TestLabelPDFRefusesAQRCodeOfAnotherURL(t *testing.T) {
	qr, _ := batches.NewQR(publicURL + "/proof/other")
	_, err := batches.RenderLabelPDF(batches.Label{BatchCode: "B-261121-001", ProofURL: publicURL + "/proof/this"}, qr,
		batches.LabelSize{WidthMM: 62, HeightMM: 29})
	if err == nil {
		t.Fatal("a label whose QR code opens another URL was rendered")
	}
}

func TestStorageLine(t *testing.T) {
	cases := []struct {
		name         string
		instructions string
		min, max     float64
		want         string
	}{
		{"instructions win", "Keep frozen at -18°C or below", -25, -18, "Keep frozen at -18°C or below"},
		{"frozen range", "", -25, -18, "Store between -25°C and -18°C"},
		{"chilled range from 0", "", 0, 4, "Store between 0°C and 4°C"},
		{"only a maximum", "", 0, -18, "Store at -18°C or below"},
		{"only a minimum", "", 5, 0, "Store at 5°C or above"},
		{"decimals", "", 0.5, 3.5, "Store between 0.5°C and 3.5°C"},
		{"nothing known", "", 0, 0, ""},
	}
	col := core.NewBaseCollection("products")
	col.Fields.Add(&core.TextField{Name: "storage_instructions"}, &core.NumberField{Name: "storage_temp_min_c"},
		&core.NumberField{Name: "storage_temp_max_c"})
	for _, c := range cases {
		p := core.NewRecord(col)
		p.Set("storage_instructions", c.instructions)
		p.Set("storage_temp_min_c", c.min)
		p.Set("storage_temp_max_c", c.max)
		if got := batches.StorageLine(p); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
