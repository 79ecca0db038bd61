package labmail

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ledongthuc/pdf"
)

// Limits of PDF text extraction: a lab report is a few pages; anything bigger is not one.
const (
	maxPDFPages     = 50
	maxTextRunes    = 200_000
	maxPDFBytesRead = 20 << 20
)

// ErrNoTextLayer is a PDF whose pages carry no text (a scan or a photo).
var ErrNoTextLayer = errors.New("no text layer (scanned?)")

// extractTimeout bounds the reading of one PDF: a crafted file must not hold the poll.
const extractTimeout = 20 * time.Second

// ExtractPDFText returns the text of a PDF row by row (cells of a table row joined by
// spaces, rows by newlines), so that a test name and its result in separate columns
// end up on one line. A malformed file returns an error, never a panic; one that takes
// longer than extractTimeout to read is given up (its reader is left to finish alone).
func ExtractPDFText(data []byte) (string, error) {
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		text, err := extractPDFText(data)
		done <- result{text, err}
	}()
	timer := time.NewTimer(extractTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.text, r.err
	case <-timer.C:
		return "", fmt.Errorf("labmail: reading the PDF took longer than %s", extractTimeout)
	}
}

func extractPDFText(data []byte) (text string, err error) {
	defer func() {
		if r := recover(); r != nil {
			text, err = "", fmt.Errorf("labmail: unreadable PDF (%v)", r)
		}
	}()
	if len(data) > maxPDFBytesRead {
		return "", fmt.Errorf("labmail: PDF of %d bytes is larger than %d MB", len(data), maxPDFBytesRead>>20)
	}
	if !bytes.HasPrefix(data, []byte("%PDF-")) {
		return "", errors.New("labmail: not a PDF (no %PDF- header)")
	}
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("labmail: unreadable PDF: %w", err)
	}
	n := r.NumPage()
	if n > maxPDFPages {
		return "", fmt.Errorf("labmail: PDF has %d pages; a lab report has at most %d", n, maxPDFPages)
	}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		p := r.Page(i)
		if p.V.IsNull() {
			continue
		}
		glyphs := p.Content().Text
		if len(glyphs) > maxTextRunes {
			return "", fmt.Errorf("labmail: page %d has more than %d characters; not a lab report", i, maxTextRunes)
		}
		for _, row := range pageRows(glyphs) {
			b.WriteString(row)
			b.WriteByte('\n')
		}
		if b.Len() > maxTextRunes*4 {
			return "", fmt.Errorf("labmail: PDF text is longer than %d characters", maxTextRunes)
		}
	}
	text = strings.TrimSpace(b.String())
	if text == "" {
		return "", ErrNoTextLayer
	}
	return text, nil
}

// textRow is the glyphs of one line of a page, in the order they were drawn.
type textRow struct {
	y      float64
	glyphs []pdf.Text
}

// pageRows groups a page's glyphs into lines by their baseline, top to bottom, and
// writes each line left to right with a space where cells or words are apart: a
// table's row becomes one line whatever order its cells were drawn in.
func pageRows(glyphs []pdf.Text) []string {
	var rows []*textRow
	for _, g := range glyphs {
		if len(rows) > 5_000 {
			break
		}
		tol := math.Max(2, g.FontSize*0.4)
		var row *textRow
		for k := len(rows) - 1; k >= 0; k-- { // the latest row first: text is mostly drawn line by line
			if math.Abs(rows[k].y-g.Y) <= tol {
				row = rows[k]
				break
			}
		}
		if row == nil {
			row = &textRow{y: g.Y}
			rows = append(rows, row)
		}
		row.glyphs = append(row.glyphs, g)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].y > rows[j].y })
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		sort.SliceStable(r.glyphs, func(i, j int) bool { return r.glyphs[i].X < r.glyphs[j].X })
		var b strings.Builder
		for i, g := range r.glyphs {
			if i > 0 && apart(r.glyphs[i-1], g) {
				b.WriteByte(' ')
			}
			b.WriteString(g.S)
		}
		if line := strings.TrimSpace(b.String()); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// apart says whether two neighbouring glyphs are separate words: a gap wider than a
// quarter of the font size after the first glyph's width (or, for fonts without widths,
// any move of the pen).
func apart(prev, cur pdf.Text) bool {
	if prev.W <= 0 {
		return cur.X != prev.X
	}
	return cur.X-(prev.X+prev.W) > 0.25*math.Max(cur.FontSize, 1)
}
