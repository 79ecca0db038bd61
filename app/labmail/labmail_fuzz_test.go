package labmail_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/labmail"
)

// fuzzReport is a lab report PDF made the way the tests make them (fpdf, compressed).
func fuzzReport(f *testing.F) []byte {
	return reportPDF(f, "Certificate of Analysis", [][]string{
		{"Sample reference", "B-261117-001"},
		{"Salmonella spp.", "Not Detected in 25g"},
		{"Listeria monocytogenes", "Not Detected in 25g"},
		{"Enterobacteriaceae", "<10 cfu/g"},
	})
}

// FuzzParseMessage feeds raw email bytes (MIME structure, headers, encoded words,
// transfer encodings, charsets) to the lab mailbox's message reader. It never panics,
// reads every message well under a second, and what it reads always has a Message-ID,
// a UTC date, and attachments no bigger than a report PDF may be.
func FuzzParseMessage(f *testing.F) {
	report := fuzzReport(f)
	raw, _ := mimeMessage("Lab <reports@lab.example>", "Certificate B-261117-001", "R=E9sultats ci-joints", "iso-8859-1", pdfPart("report.pdf", report))
	f.Add(raw)
	raw, _ = mimeMessage("reports@lab.example", "=?utf-8?q?R=C3=A9sultats?=", "Bonjour", "utf-8", pdfPart("a.pdf", []byte("%PDF-1.4 tiny")), part{"notes.txt", "text/plain", []byte("x")})
	f.Add(raw)
	raw, _ = mimeMessage("reports@lab.example", "no parts", "body", "x-unknown-charset")
	f.Add(raw)
	f.Add([]byte("From: a@b.example\r\nSubject: plain\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSalmonella =96 Absent\r\n"))
	f.Add([]byte("From: a@b.example\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: multipart/alternative; boundary=y\r\n\r\n--y\r\nContent-Type: text/plain\r\n\r\nhi\r\n--y--\r\n--x\r\nContent-Disposition: attachment; filename*=UTF-8''r%C3%A9sultat.pdf\r\n\r\n%PDF-1.4\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\ntruncated"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, raw []byte) {
		start := time.Now()
		msg, err := labmail.ParseMessage(raw)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("reading a %d-byte message took %v", len(raw), d)
		}
		if err != nil {
			return
		}
		if msg.MessageID == "" || !msg.ReceivedAt.IsZero() && msg.ReceivedAt.Location() != time.UTC {
			t.Fatalf("message id %q, date %v", msg.MessageID, msg.ReceivedAt)
		}
		for _, a := range msg.Attachments {
			if len(a.Data) > batches.MaxPDFBytes+1 {
				t.Fatalf("attachment %q of %d bytes", a.Name, len(a.Data))
			}
		}
	})
}

// FuzzExtractPDFText feeds PDF bytes to the text extraction that runs on every lab
// email attachment: it returns text or an error (never both, never neither), never
// panics, keeps within its time (2 s here, so that an input on which the PDF library
// spins does not stall the fuzzer; lab emails get extractTimeout, 20 s) and size
// limits, and gives text only when there is some.
func FuzzExtractPDFText(f *testing.F) {
	report := fuzzReport(f)
	f.Add(report)
	f.Add(reportPDF(f, "Microlab", [][]string{{"LOT/B-261117-009"}, {"Salm. spp", "Neg/25g"}, {"EB (log cfu/g)", "2.0"}}))
	f.Add(report[:len(report)/2])
	f.Add(corruptPDF())
	f.Add([]byte("%PDF-1.4\n"))
	f.Add([]byte("PK\x03\x04zip"))
	f.Add([]byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 1 0 R >> endobj\nxref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer << /Size 2 /Root 1 0 R >>\nstartxref\n60\n%%EOF\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		text, err := labmail.ExtractWithin(data, 2*time.Second)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("extraction took %v", d)
		}
		switch {
		case err != nil && text != "":
			t.Fatalf("both text and error %v", err)
		case err == nil && strings.TrimSpace(text) == "":
			t.Fatal("no text and no error")
		case err == nil && text != strings.TrimSpace(text):
			t.Fatal("text not trimmed")
		case len(text) > 200_000*4+4*5_000:
			t.Fatalf("text of %d bytes", len(text))
		case errors.Is(err, labmail.ErrNoTextLayer) && text != "":
			t.Fatal("ErrNoTextLayer with text")
		}
	})
}

// FuzzLabPatterns feeds lab_pdf_patterns rows as staff type them (regular expressions,
// unit, sender match) together with a report's text and sender. A pattern CheckPattern
// accepts never fails to parse; one it refuses for its expressions fails with a clear
// error; a report read with any pattern has a confidence in 0..1, findings the release
// rule reads, and distinct, non-empty batch codes.
func FuzzLabPatterns(f *testing.F) {
	def := labmail.BuiltinPatterns()[0]
	text := "B-261117-001\nSalmonella spp. Not Detected in 25g\nListeria Absent\nEnterobacteriaceae <10 cfu/g"
	micro := "MICROLAB SERVICES LTD\nClient sample: LOT/B-261117-009\nSalm. spp Neg/25g\nL. mono Neg/25g\nEB (log cfu/g) 2.0\n"
	f.Add(def.BatchCodeRegexp, def.SalmonellaRegexp, def.ListeriaRegexp, def.EnterobacteriaRegexp, def.Unit, "", "reports@lab.example", text)
	f.Add(`LOT/([A-Z0-9]+-\d{6}-\d{3})`, `(?i)^salm\.? spp`, `(?i)^l\. ?mono`, `(?i)^EB\b`, labmail.UnitLog10CFUPerG, "@microlab.example",
		"Microlab <reports@microlab.example>", micro)
	f.Add(`Ref: (\S+)`, `(?i)salmonella:\s*(\w+)`, ``, `(?i)EB count ([\d.]+)`, labmail.UnitCFUPerG, "", "x", "Ref: B-1\nSalmonella: absent\nEB count 1e999")
	f.Add(`x*`, `a{1001}`, `(`, ``, "", "", "", text)
	f.Add(``, ``, ``, ``, "", "", "", "")
	f.Add(`(?i)(b)?`, `()`, `$`, `^`, labmail.UnitLog10CFUPerG, "LAB", "lab", "99999999999999999\nEB 1.5")
	f.Fuzz(func(t *testing.T, codeRe, salRe, lisRe, entRe, unit, senderMatch, from, text string) {
		if len(text) > 1<<14 || len(codeRe)+len(salRe)+len(lisRe)+len(entRe) > 1<<10 {
			return
		}
		p := labmail.Pattern{LabName: "Fuzz lab", SenderMatch: senderMatch, BatchCodeRegexp: codeRe,
			SalmonellaRegexp: salRe, ListeriaRegexp: lisRe, EnterobacteriaRegexp: entRe, Unit: unit}
		checked := labmail.CheckPattern(p)
		start := time.Now()
		rep, err := labmail.ParseLabReport(text, p)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("parsing %d bytes took %v", len(text), d)
		}
		if err != nil {
			if checked == nil {
				t.Fatalf("a pattern CheckPattern accepts fails to parse: %v", err)
			}
			return
		}
		if rep.Confidence < 0 || rep.Confidence > 1 {
			t.Fatalf("confidence %v", rep.Confidence)
		}
		for _, v := range []string{rep.Salmonella, rep.Listeria} {
			if v != "" && v != batches.Absent && v != batches.Detected {
				t.Fatalf("presence %q", v)
			}
		}
		if c := rep.EnterobacteriaceaeCFU; c < 0 || c > 1e15 || c != c {
			t.Fatalf("count %v", c)
		}
		seen := map[string]bool{}
		for _, c := range rep.BatchCodes {
			if strings.TrimSpace(c) == "" || seen[c] || !utf8.ValidString(c) && utf8.ValidString(text) {
				t.Fatalf("batch codes %q", rep.BatchCodes)
			}
			seen[c] = true
		}
		if checked == nil {
			if _, err := labmail.ParseWithPatterns(text, from, []labmail.Pattern{p}); err != nil && !strings.Contains(err.Error(), "no lab_pdf_patterns row fits") {
				t.Fatalf("ParseWithPatterns: %v", err)
			}
		}
	})
}
