package labmail

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A report PDF is read in a child process and gives the same text as in this one.
func TestExtractPDFTextReadsInAChildProcess(t *testing.T) {
	good := pdfOf("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>", reportContent)
	text, err := ExtractPDFText(good)
	if err != nil || text != "Salmonella Absent" {
		t.Fatalf("text %q, error %v", text, err)
	}
	if _, err := ExtractPDFText([]byte("%PDF-1.4\nnothing")); err == nil || !strings.Contains(err.Error(), "unreadable PDF") {
		t.Fatalf("a broken PDF: %v", err)
	}
}

// A compressed content stream that unpacks to a flood of glyphs (a PDF "zip bomb": tens
// of KB that unpack to 20 MB of text, gigabytes as the library's glyphs) ends the child
// at its memory limit; this process is untouched and the email gets a reason.
func TestExtractPDFTextSurvivesADecompressionBomb(t *testing.T) {
	defer func(old int64) { pdfChildMaxBytes = old }(pdfChildMaxBytes)
	pdfChildMaxBytes = 64 << 20

	var packed bytes.Buffer
	zw := zlib.NewWriter(&packed)
	zw.Write([]byte("BT /F1 12 Tf 72 712 Td "))
	chunk := bytes.Repeat([]byte("(aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) Tj\n"), 10_000)
	for range 20 << 20 / len(chunk) {
		zw.Write(chunk)
	}
	zw.Write([]byte("ET"))
	zw.Close()
	stream := fmt.Sprintf("<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", packed.Len(), packed.Bytes())
	bomb := pdfOf("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>", stream)

	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	started := time.Now()
	_, err := ExtractPDFText(bomb)
	if err == nil || !strings.Contains(err.Error(), "more than 64 MB of memory") {
		t.Fatalf("a %d KB bomb: %v; want the child ended at its memory limit", len(bomb)>>10, err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("%d KB PDF unpacking to 20 MB of glyph text: refused in %s; this process's heap %d → %d MB",
		len(bomb)>>10, time.Since(started).Round(time.Millisecond), before.HeapAlloc>>20, after.HeapAlloc>>20)
}
