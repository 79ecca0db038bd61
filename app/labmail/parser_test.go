package labmail_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/opspine/opspine/app/batches"
	"github.com/opspine/opspine/app/labmail"
)

func defaultPattern() labmail.Pattern { return labmail.BuiltinPatterns()[0] }

// TestParseLabReportReadsTheUsualWordings runs fpdf-made reports through text
// extraction and the built-in pattern: each wording and layout reads to the findings
// the release rule needs, with full confidence.
func TestParseLabReportReadsTheUsualWordings(t *testing.T) {
	cases := []struct {
		name    string
		rows    [][]string
		want    batches.Findings
		code    string
		minConf float64
	}{
		{"two-column table, not detected and <10", [][]string{
			{"Sample reference", "B-261117-001"},
			{"Test", "Result"},
			{"Salmonella spp.", "Not Detected in 25g"},
			{"Listeria monocytogenes", "Not Detected in 25g"},
			{"Enterobacteriaceae", "<10 cfu/g"},
		}, batches.Findings{Salmonella: "absent", Listeria: "absent", EnterobacteriaceaeTested: true, EnterobacteriaceaeCFU: 10}, "B-261117-001", 1},
		{"absent and scientific notation with x 10^", [][]string{
			{"Batch: B-261117-002"},
			{"Salmonella", "Absent"},
			{"Listeria", "Absent"},
			{"Enterobacteriaceae count", "1.2 x 10^2 cfu/g"},
		}, batches.Findings{Salmonella: "absent", Listeria: "absent", EnterobacteriaceaeTested: true, EnterobacteriaceaeCFU: 120}, "B-261117-002", 1},
		{"E notation and a detection", [][]string{
			{"Your ref B-261117-003"},
			{"Salmonella spp. (ISO 6579-1)", "Detected"},
			{"Listeria monocytogenes (ISO 11290-1)", "Not Detected"},
			{"Enterobacteriaceae (ISO 21528-2)", "1.2E+02"},
		}, batches.Findings{Salmonella: "detected", Listeria: "absent", EnterobacteriaceaeTested: true, EnterobacteriaceaeCFU: 120}, "B-261117-003", 1},
		{"result wrapped onto the next row", [][]string{
			{"B-261117-004"},
			{"Salmonella spp."},
			{"", "Not Detected in 25g"},
			{"Listeria monocytogenes"},
			{"", "Absent"},
			{"Enterobacteriaceae"},
			{"", "3.4E+03 cfu/g"},
		}, batches.Findings{Salmonella: "absent", Listeria: "absent", EnterobacteriaceaeTested: true, EnterobacteriaceaeCFU: 3400}, "B-261117-004", 1},
		{"missing listeria lowers confidence", [][]string{
			{"B-261117-005"},
			{"Salmonella", "Absent"},
			{"Enterobacteriaceae", "<10 cfu/g"},
		}, batches.Findings{Salmonella: "absent", EnterobacteriaceaeTested: true, EnterobacteriaceaeCFU: 10}, "B-261117-005", 0.66},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text, err := labmail.ExtractPDFText(reportPDF(t, "Certificate of Analysis", tc.rows))
			if err != nil {
				t.Fatalf("extract: %v", err)
			}
			rep, err := labmail.ParseLabReport(text, defaultPattern())
			if err != nil {
				t.Fatal(err)
			}
			if rep.BatchCode() != tc.code {
				t.Errorf("batch code %q (all %v), want %s\n%s", rep.BatchCode(), rep.BatchCodes, tc.code, text)
			}
			got := rep.Findings
			if got.Salmonella != tc.want.Salmonella || got.Listeria != tc.want.Listeria ||
				got.EnterobacteriaceaeTested != tc.want.EnterobacteriaceaeTested || got.EnterobacteriaceaeCFU != tc.want.EnterobacteriaceaeCFU {
				t.Errorf("findings %+v, want %+v\ntext:\n%s", got, tc.want, text)
			}
			if tc.minConf == 1 && rep.Confidence != 1 || rep.Confidence < tc.minConf || (tc.minConf < 1 && rep.Confidence >= 0.8) {
				t.Errorf("confidence %.2f (problems %v), want about %.2f", rep.Confidence, rep.Problems, tc.minConf)
			}
		})
	}
}

// TestExtractPDFTextRefusesScansAndBrokenFiles: a scan has no text layer, a broken file
// and a non-PDF are errors, never panics.
func TestExtractPDFTextRefusesScansAndBrokenFiles(t *testing.T) {
	if _, err := labmail.ExtractPDFText(scannedPDF(t)); !errors.Is(err, labmail.ErrNoTextLayer) {
		t.Errorf("scanned PDF: %v, want ErrNoTextLayer", err)
	}
	good := reportPDF(t, "x", [][]string{{"Salmonella", "Absent"}})
	for name, data := range map[string][]byte{"corrupt": corruptPDF(), "truncated": good[:len(good)/2], "not a pdf": []byte("PK\x03\x04zip")} {
		if _, err := labmail.ExtractPDFText(data); err == nil || errors.Is(err, labmail.ErrNoTextLayer) {
			t.Errorf("%s: %v, want a read error", name, err)
		}
	}
}

// TestParseLabReportSecondLabFormat: a lab writing log10 counts and abbreviations is read
// by its own pattern, and only poorly by the default one.
func TestParseLabReportSecondLabFormat(t *testing.T) {
	text := "MICROLAB SERVICES LTD\nClient sample: LOT/B-261117-009\nSalm. spp Neg/25g\nL. mono Neg/25g\nEB (log cfu/g) 2.0\n"
	def, _ := labmail.ParseLabReport(text, defaultPattern())
	if def.Confidence >= 0.8 {
		t.Errorf("default pattern read the second lab with confidence %.2f: %+v", def.Confidence, def)
	}
	own := labmail.Pattern{LabName: "Microlab", SenderMatch: "@microlab.example", BatchCodeRegexp: `LOT/([A-Z0-9]+-\d{6}-\d{3})`,
		SalmonellaRegexp: `(?i)^salm\.? spp`, ListeriaRegexp: `(?i)^l\. ?mono`, EnterobacteriaRegexp: `(?i)^EB\b`, Unit: labmail.UnitLog10CFUPerG}
	rep, err := labmail.ParseLabReport(text, own)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BatchCode() != "B-261117-009" || rep.Salmonella != "absent" || rep.Listeria != "absent" || rep.EnterobacteriaceaeCFU != 100 || rep.Confidence != 1 {
		t.Errorf("own pattern: %+v", rep)
	}
	best, err := labmail.ParseWithPatterns(text, "Microlab <reports@microlab.example>", []labmail.Pattern{defaultPattern(), own})
	if err != nil || best.Lab != "Microlab" {
		t.Errorf("ParseWithPatterns picked %q (%v)", best.Lab, err)
	}
}

// FuzzLabReportParser: any text parses without panicking, to a confidence in 0..1 and
// findings the release rule accepts.
func FuzzLabReportParser(f *testing.F) {
	for _, s := range []string{
		"B-261117-001\nSalmonella spp. Not Detected in 25g\nListeria Absent\nEnterobacteriaceae <10 cfu/g",
		"Salmonella\nDetected\nEnterobacteriaceae 1.2 x 10^2 cfu/g", "Enterobacteriaceae 1.2E+02", "Enterobacteriaceae 9.9E+999",
		"Enterobacteriaceae 1,200,000 cfu/g", "Listeria positive negative", "", "\x00\xff", "Enterobacteriaceae 1.2×10²",
	} {
		f.Add(s)
	}
	p := defaultPattern()
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 1<<16 {
			return
		}
		rep, err := labmail.ParseLabReport(text, p)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Confidence < 0 || rep.Confidence > 1 {
			t.Fatalf("confidence %v", rep.Confidence)
		}
		for _, v := range []string{rep.Salmonella, rep.Listeria} {
			if v != "" && v != batches.Absent && v != batches.Detected {
				t.Fatalf("presence %q", v)
			}
		}
		if rep.EnterobacteriaceaeCFU < 0 || rep.EnterobacteriaceaeCFU > 1e15 || rep.EnterobacteriaceaeCFU != rep.EnterobacteriaceaeCFU {
			t.Fatalf("count %v", rep.EnterobacteriaceaeCFU)
		}
		for _, c := range rep.BatchCodes {
			if strings.TrimSpace(c) == "" {
				t.Fatal("empty batch code")
			}
		}
	})
}
