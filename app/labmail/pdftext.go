package labmail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ledongthuc/pdf"
)

// Limits of PDF text extraction: a lab report is a few pages; anything bigger is not one.
const (
	maxPDFPages     = 50
	maxTextRunes    = 200_000
	maxPDFBytesRead = 20 << 20
)

// checkPDFSize refuses a PDF larger than a lab report can be.
func checkPDFSize(data []byte) error {
	if len(data) > maxPDFBytesRead {
		return fmt.Errorf("labmail: PDF of %d bytes is larger than %d MB", len(data), maxPDFBytesRead>>20)
	}
	return nil
}

// ErrNoTextLayer is a PDF whose pages carry no text (a scan or a photo).
var ErrNoTextLayer = errors.New("no text layer (scanned?)")

// extractTimeout bounds the reading of one PDF: a crafted file must not hold the poll.
const extractTimeout = 20 * time.Second

// extractWithin reads the PDF in this process, giving up after timeout (the reader
// left behind stops at its next read). ExtractPDFText runs it in a child process.
func extractWithin(data []byte, timeout time.Duration) (string, error) {
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	src := &stoppableReader{data: bytes.NewReader(data)}
	go func() {
		text, err := extractPDFText(data, src)
		done <- result{text, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.text, r.err
	case <-timer.C:
		src.stopped.Store(true)
		return "", fmt.Errorf("labmail: reading the PDF took longer than %s", timeout)
	}
}

// stoppableReader is the PDF's bytes for the PDF library, which reads the file again at
// every object it looks up and loops forever on some cycles (a page whose Parent is
// itself): once stopped, every read fails, the library panics on it and the goroutine
// left behind by the timeout ends instead of spinning for the life of the process.
type stoppableReader struct {
	data    *bytes.Reader
	stopped atomic.Bool
}

func (s *stoppableReader) ReadAt(p []byte, off int64) (int, error) {
	if s.stopped.Load() {
		return 0, errors.New("labmail: PDF reading given up")
	}
	return s.data.ReadAt(p, off)
}

func extractPDFText(data []byte, src io.ReaderAt) (text string, err error) {
	defer func() {
		if r := recover(); r != nil {
			text, err = "", fmt.Errorf("labmail: unreadable PDF (%v)", r)
		}
	}()
	if err := checkPDFSize(data); err != nil {
		return "", err
	}
	if !bytes.HasPrefix(data, []byte("%PDF-")) {
		return "", errors.New("labmail: not a PDF (no %PDF- header)")
	}
	r, err := pdf.NewReader(src, int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("labmail: unreadable PDF: %w", err)
	}
	pages, err := pageList(r)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, p := range pages {
		glyphs := p.Content().Text
		if len(glyphs) > maxTextRunes {
			return "", fmt.Errorf("labmail: page %d has more than %d characters; not a lab report", i+1, maxTextRunes)
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

// maxPageTreeNodes bounds the walk of a page tree: a lab report's has a few nodes.
const maxPageTreeNodes = 4 * maxPDFPages

// pageList returns the pages of the document in order. It walks the page tree itself,
// with a bound on its nodes, because the library's Reader.Page loops forever on a
// tree whose Kids contain the tree again.
func pageList(r *pdf.Reader) ([]pdf.Page, error) {
	var pages []pdf.Page
	nodes := 0
	var walk func(v pdf.Value) error
	walk = func(v pdf.Value) error {
		if nodes++; nodes > maxPageTreeNodes {
			return fmt.Errorf("labmail: the PDF's page tree has more than %d nodes (or contains itself); not a lab report", maxPageTreeNodes)
		}
		switch v.Key("Type").Name() {
		case "Pages":
			kids := v.Key("Kids")
			for i := 0; i < kids.Len(); i++ {
				if err := walk(kids.Index(i)); err != nil {
					return err
				}
			}
		case "Page":
			if len(pages) == maxPDFPages {
				return fmt.Errorf("labmail: PDF has more than %d pages; a lab report has at most %d", maxPDFPages, maxPDFPages)
			}
			pages = append(pages, pdf.Page{V: v})
		}
		return nil
	}
	err := walk(r.Trailer().Key("Root").Key("Pages"))
	return pages, err
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
