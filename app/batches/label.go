package batches

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/filesystem"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/text/encoding/charmap"
)

// The pouch label (SOP-PROOF-00): the QR code of the proof URL beside the product, the
// batch code, the produced and use-by dates and the storage line, on one page the size
// of the label stock. Text is set in Helvetica (a PDF core font: nothing embedded, a
// few kilobytes a label) when it is all Windows-1252, as it almost always is; other
// text (a Polish or Greek product name) switches the label to the Go fonts, embedded
// as subsets, so any name prints as typed. Either way the text reads back from the PDF.

// LabelSize is the label stock in millimetres (default 62 × 29).
type LabelSize struct {
	WidthMM, HeightMM float64
}

func (s LabelSize) check() error {
	if s.WidthMM < 20 || s.HeightMM < 15 {
		return fmt.Errorf("batches: label size %gx%g mm is too small; at least 20x15", s.WidthMM, s.HeightMM)
	}
	return nil
}

// Label is what a pouch label shows. Dates are shown as days in their own location.
type Label struct {
	ProductName string
	BatchCode   string
	ProducedOn  time.Time
	UseBy       time.Time
	// Storage is the storage line; empty leaves it out.
	Storage string
	// ProofURL is what the QR code opens (the QR passed to RenderLabelPDF encodes it).
	ProofURL string
}

const (
	labelMarginMM = 1.5
	labelGapMM    = 1.5
	ptToMM        = 25.4 / 72
	lineSpacing   = 1.18
	minFontPt     = 4.0
)

// labelLine is one block of text: its font, size in points and how many lines it may wrap to.
type labelLine struct {
	text     string
	bold     bool
	sizePt   float64
	maxLines int
}

// RenderLabelPDF draws l with its QR code (NewQR(l.ProofURL)) on one page of size:
// the code on the left of a landscape label (on top of a portrait one), the text
// beside it, shrunk together until it fits.
func RenderLabelPDF(l Label, qr QR, size LabelSize) ([]byte, error) {
	if err := size.check(); err != nil {
		return nil, err
	}
	if l.ProofURL != "" && qr.Content != l.ProofURL {
		return nil, fmt.Errorf("render label %s: the QR code encodes %q, not the proof URL %q", l.BatchCode, qr.Content, l.ProofURL)
	}
	w, h := size.WidthMM, size.HeightMM
	pdf := fpdf.NewCustom(&fpdf.InitType{UnitStr: "mm", Size: fpdf.SizeType{Wd: w, Ht: h}})
	pdf.SetMargins(0, 0, 0)
	pdf.SetCellMargin(0)
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetTitle("Label "+l.BatchCode, true)
	pdf.SetSubject(l.ProductName, true)
	pdf.SetCreator("opspine", true)
	lines := labelLines(l)
	face := chooseLabelFace(pdf, lines)
	pdf.AddPage()

	var qrX, qrY, side, textX, textY, textW, textH float64
	if w >= h {
		side = min(h-2*labelMarginMM, w*0.45)
		qrX, qrY = labelMarginMM, (h-side)/2
		textX, textY = qrX+side+labelGapMM, labelMarginMM
		textW, textH = w-textX-labelMarginMM, h-2*labelMarginMM
	} else {
		side = min(w-2*labelMarginMM, h*0.55)
		qrX, qrY = (w-side)/2, labelMarginMM
		textX, textY = labelMarginMM, qrY+side+labelGapMM
		textW, textH = w-2*labelMarginMM, h-textY-labelMarginMM
	}
	drawQR(pdf, qr, qrX, qrY, side)
	drawLabelText(pdf, face, lines, textX, textY, textW, textH)

	var b bytes.Buffer
	if err := pdf.Output(&b); err != nil {
		return nil, fmt.Errorf("render label %s: %w", l.BatchCode, err)
	}
	return b.Bytes(), nil
}

func labelLines(l Label) []labelLine {
	lines := []labelLine{
		{text: l.ProductName, bold: true, sizePt: 8, maxLines: 2},
		{text: "Batch " + l.BatchCode, bold: true, sizePt: 8.5, maxLines: 1},
		{text: "Produced " + l.ProducedOn.Format("2 Jan 2006"), sizePt: 6.5, maxLines: 1},
		{text: "Use by " + l.UseBy.Format("2 Jan 2006"), bold: true, sizePt: 6.5, maxLines: 1},
	}
	if s := strings.TrimSpace(l.Storage); s != "" {
		lines = append(lines, labelLine{text: s, sizePt: 5.5, maxLines: 3})
	}
	return lines
}

// drawQR draws the modules as filled squares, one rectangle per run of dark modules in
// a row: vector, so it stays sharp on any printer. Rows overlap by a hair so that
// renderers leave no seams between them.
func drawQR(pdf *fpdf.Fpdf, qr QR, x, y, side float64) {
	n := len(qr.Modules)
	if n == 0 {
		return
	}
	m := side / float64(n)
	pdf.SetFillColor(0, 0, 0)
	for r, row := range qr.Modules {
		for c := 0; c < n; {
			if !row[c] {
				c++
				continue
			}
			start := c
			for c < n && row[c] {
				c++
			}
			pdf.Rect(x+float64(start)*m, y+float64(r)*m, float64(c-start)*m, m+0.02, "F")
		}
	}
}

// labelFace is the font family the label's text is set in and how text is given to it.
type labelFace struct {
	family string
	// encode turns UTF-8 text into what the font takes: Windows-1252 bytes for a core
	// font, the text itself for an embedded one.
	encode func(string) string
	utf8   bool
}

// chooseLabelFace picks Helvetica when every line is Windows-1252 text, and otherwise
// embeds the Go fonts into pdf.
func chooseLabelFace(pdf *fpdf.Fpdf, lines []labelLine) labelFace {
	cp1252 := func(s string) (string, error) { return charmap.Windows1252.NewEncoder().String(s) }
	fits := true
	for _, ln := range append(lines, labelLine{text: "…"}) {
		if _, err := cp1252(ln.text); err != nil {
			fits = false
			break
		}
	}
	if fits {
		return labelFace{family: "Helvetica", encode: func(s string) string {
			out, _ := cp1252(s)
			return out
		}}
	}
	pdf.AddUTF8FontFromBytes("go", "", goregular.TTF)
	pdf.AddUTF8FontFromBytes("go", "B", gobold.TTF)
	return labelFace{family: "go", encode: func(s string) string { return s }, utf8: true}
}

// drawLabelText sets the lines top down in the box, scaling every size down together
// until the wrapped text fits its height.
func drawLabelText(pdf *fpdf.Fpdf, face labelFace, lines []labelLine, x, y, w, h float64) {
	scale := 1.0
	var wrapped [][]string
	for {
		wrapped = wrapped[:0]
		total := 0.0
		for _, ln := range lines {
			setLabelFont(pdf, face, ln, scale)
			parts := wrapLabelText(pdf, face, ln.text, w, ln.maxLines)
			wrapped = append(wrapped, parts)
			total += float64(len(parts)) * ln.sizePt * scale * ptToMM * lineSpacing
		}
		if total <= h || lines[len(lines)-1].sizePt*scale <= minFontPt {
			break
		}
		scale *= 0.93
	}
	pdf.SetTextColor(0, 0, 0)
	cy := y
	for i, ln := range lines {
		setLabelFont(pdf, face, ln, scale)
		lh := ln.sizePt * scale * ptToMM * lineSpacing
		for _, part := range wrapped[i] {
			pdf.SetXY(x, cy)
			pdf.CellFormat(w, lh, part, "", 0, "L", false, 0, "")
			cy += lh
		}
	}
}

func setLabelFont(pdf *fpdf.Fpdf, face labelFace, ln labelLine, scale float64) {
	style := ""
	if ln.bold {
		style = "B"
	}
	pdf.SetFont(face.family, style, ln.sizePt*scale)
}

// wrapLabelText splits s into lines, encoded for face, that fit width w, at most
// maxLines; the last line ends in an ellipsis when text had to be left out.
func wrapLabelText(pdf *fpdf.Fpdf, face labelFace, s string, w float64, maxLines int) []string {
	var parts []string
	if face.utf8 {
		parts = pdf.SplitText(s, w)
	} else {
		for _, b := range pdf.SplitLines([]byte(face.encode(s)), w) {
			parts = append(parts, string(b))
		}
	}
	if len(parts) <= maxLines {
		return parts
	}
	parts = parts[:maxLines]
	ellipsis := face.encode("…")
	last := strings.TrimSpace(parts[maxLines-1])
	for len(last) > 0 && pdf.GetStringWidth(last+ellipsis) > w {
		if face.utf8 {
			r := []rune(last)
			last = string(r[:len(r)-1])
		} else {
			last = last[:len(last)-1]
		}
	}
	parts[maxLines-1] = strings.TrimSpace(last) + ellipsis
	return parts
}

// StorageLine is the product's storage line for labels: storage_instructions as
// written, otherwise one made from the storage temperatures (e.g. "Store at -18°C or
// below"); empty when the product has neither. An unset temperature reads as 0, so a
// 0 is taken as set only beside a higher maximum or a lower minimum.
func StorageLine(product *core.Record) string {
	if s := strings.TrimSpace(product.GetString("storage_instructions")); s != "" {
		return s
	}
	lo, hi := product.GetFloat("storage_temp_min_c"), product.GetFloat("storage_temp_max_c")
	switch {
	case lo == 0 && hi == 0:
		return ""
	case lo < hi && !(lo == 0 && hi < 0):
		return fmt.Sprintf("Store between %s°C and %s°C", formatNumber(lo), formatNumber(hi))
	case hi != 0 && lo <= hi || lo == 0:
		return fmt.Sprintf("Store at %s°C or below", formatNumber(hi))
	default:
		return fmt.Sprintf("Store at %s°C or above", formatNumber(lo))
	}
}

// ReadLabelPDF returns the label PDF stored on batch; when the stored file is missing
// (a restored database without its files), it renders the label again from the batch
// and its product as they are now.
func ReadLabelPDF(app core.App, batch *core.Record, deps Deps) ([]byte, error) {
	if name := batch.GetString("label_pdf"); name != "" {
		b, err := readStoredFile(app, batch.BaseFilesPath()+"/"+name)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, filesystem.ErrNotFound) {
			return nil, fmt.Errorf("read label of batch %s: %w", batch.GetString("code"), err)
		}
	}
	return RenderBatchLabel(app, batch, deps)
}

// RenderBatchLabel renders the label of a saved batch from its record and its product.
func RenderBatchLabel(app core.App, batch *core.Record, deps Deps) ([]byte, error) {
	if err := deps.check(); err != nil {
		return nil, err
	}
	product, err := app.FindRecordById(collectionProducts, batch.GetString("product"))
	if err != nil {
		return nil, fmt.Errorf("label of batch %s: product: %w", batch.GetString("code"), err)
	}
	proofURL := ProofURL(deps.PublicURL, batch.GetString("public_id"))
	qr, err := NewQR(proofURL)
	if err != nil {
		return nil, err
	}
	return RenderLabelPDF(Label{
		ProductName: product.GetString("name"),
		BatchCode:   batch.GetString("code"),
		ProducedOn:  StartOfDay(batch.GetDateTime("produced_at").Time(), deps.Timezone),
		UseBy:       StartOfDay(batch.GetDateTime("expiry_date").Time(), deps.Timezone),
		Storage:     StorageLine(product),
		ProofURL:    proofURL,
	}, qr, deps.Label)
}

func readStoredFile(app core.App, key string) ([]byte, error) {
	fsys, err := app.NewFilesystem()
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	r, err := fsys.GetReader(key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
