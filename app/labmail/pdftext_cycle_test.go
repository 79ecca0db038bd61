package labmail

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// pdfOf writes a PDF of the given objects (numbered from 1, the first the catalog)
// with a correct cross-reference table.
func pdfOf(objs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

const reportContent = "<< /Length 48 >>\nstream\nBT /F1 12 Tf 72 712 Td (Salmonella Absent) Tj ET\nendstream"

// TestExtractPDFTextRefusesAPageTreeThatContainsItself: the library's Reader.Page loops
// forever on such a tree (found by FuzzExtractPDFText); the extraction refuses it at once.
func TestExtractPDFTextRefusesAPageTreeThatContainsItself(t *testing.T) {
	for name, data := range map[string][]byte{
		"kids contain the tree": pdfOf("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [2 0 R] /Count 5 >>"),
		"kids twice, deep":      pdfOf("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [2 0 R 2 0 R] /Count 1 >>"),
	} {
		start := time.Now()
		_, err := extractWithin(data, 10*time.Second)
		if err == nil || !strings.Contains(err.Error(), "page tree") || time.Since(start) > 5*time.Second {
			t.Errorf("%s: %v after %v, want the page tree refused at once", name, err, time.Since(start))
		}
	}
	good := pdfOf("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>",
		reportContent)
	if text, err := extractWithin(good, 10*time.Second); err != nil || text != "Salmonella Absent" {
		t.Errorf("a one-page report: %q %v", text, err)
	}
}

// TestExtractionGivenUpStopsReading: a page whose Parent is itself and has no Resources
// makes the library look for them forever. The timeout answers, and the reader left
// behind ends at its next read instead of spinning for the life of the process.
func TestExtractionGivenUpStopsReading(t *testing.T) {
	data := pdfOf("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 3 0 R /Contents 4 0 R >>", reportContent)
	start := time.Now()
	if _, err := extractWithin(data, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "took longer") {
		t.Fatalf("got %v, want the timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("answered after %v", d)
	}

	src := &stoppableReader{data: bytes.NewReader(data)}
	done := make(chan error, 1)
	go func() { _, err := extractPDFText(data, src); done <- err }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the library finished on its own (%v): this file no longer shows the loop", err)
	default:
	}
	src.stopped.Store(true)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a stopped reading returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reading goes on after it was stopped")
	}
}
