package proof

import (
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var london = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return loc
}()

func releasedRow() proofRow {
	return proofRow{
		BatchID: "rec0000000batch", Code: "PR-260621-001", Status: "released",
		ProducedAt: "2026-06-20 23:30:00.000Z", ExpiryDate: "2026-07-20 23:00:00.000Z",
		ProductName: "Duck & Heart", StorageMaxC: sql.NullFloat64{Float64: -18, Valid: true}, StorageMinC: sql.NullFloat64{Float64: -25, Valid: true},
		LabResultID: "rec00000000labr", Lab: "ALS", Salmonella: "absent", EnteroTested: true, EnteroCFU: 300,
		ReportFile: "report_x.pdf", ReportedAt: "2026-06-24 00:00:00.000Z",
	}
}

// TestBuildViewDatesAreBusinessDays checks dates are the calendar days of the business
// time zone: produced at 23:30 UTC on 20 June is 21 June in London (BST).
func TestBuildViewDatesAreBusinessDays(t *testing.T) {
	v, err := buildView(releasedRow(), "Protocol Raw", "0123456789abcdef0123", london)
	if err != nil {
		t.Fatal(err)
	}
	if v.ProducedOn.String() != "21 Jun 2026" || v.ProducedOn.ISO() != "2026-06-21" || v.UseBy.String() != "21 Jul 2026" {
		t.Errorf("produced %s (%s), use by %s", v.ProducedOn, v.ProducedOn.ISO(), v.UseBy)
	}
	utc, err := buildView(releasedRow(), "Protocol Raw", "0123456789abcdef0123", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if utc.ProducedOn.String() != "20 Jun 2026" {
		t.Errorf("in UTC produced %s", utc.ProducedOn)
	}
	bad, err := buildView(proofRow{Status: "released", ProducedAt: "yesterday"}, "b", "p", london)
	if err != nil || !bad.ProducedOn.IsZero() || !bad.UseBy.IsZero() {
		t.Errorf("an unreadable or missing date is left out, got %v %v (%v)", bad.ProducedOn, bad.UseBy, err)
	}
}

func TestBuildViewVerdicts(t *testing.T) {
	cases := []struct {
		status   string
		verdict  Verdict
		headline string
		tests    int
		report   bool
	}{
		{"released", VerdictPass, "PASS", 2, true},
		{"failed", VerdictFail, "FAIL", 2, false},
		{"recalled", VerdictRecalled, "RECALLED", 2, false},
		{"qa_hold", VerdictAwaiting, "AWAITING RESULTS", 0, false},
		{"something_new", VerdictAwaiting, "AWAITING RESULTS", 0, false}, // never shown as safe
	}
	for _, c := range cases {
		r := releasedRow()
		r.Status = c.status
		v, err := buildView(r, "Protocol Raw", "0123456789abcdef0123", london)
		if err != nil {
			t.Fatal(err)
		}
		if v.Verdict != c.verdict || v.Headline != c.headline || len(v.Tests) != c.tests || (v.ReportURL != "") != c.report {
			t.Errorf("%s: %s %q, %d tests, report %q", c.status, v.Verdict, v.Headline, len(v.Tests), v.ReportURL)
		}
		if c.status == "recalled" && !strings.HasPrefix(v.Message, "Do not feed") {
			t.Errorf("recalled message %q", v.Message)
		}
	}
}

// TestEnterobacteriaceaeLimit checks the limit shown: the config row when there is one,
// else the default of 300 cfu/g, and that a count at the limit passes.
func TestEnterobacteriaceaeLimit(t *testing.T) {
	r := releasedRow()
	tests, err := testsOf(r)
	if err != nil {
		t.Fatal(err)
	}
	e := tests[1]
	if e.Name != "Enterobacteriaceae" || e.Result != "300 cfu/g" || e.Limit != "≤ 300 cfu/g" || !e.Passed() {
		t.Errorf("default limit: %+v", e)
	}
	r.EnteroLimitCfg = sql.NullFloat64{Float64: 250, Valid: true}
	tests, _ = testsOf(r)
	if e := tests[1]; e.Limit != "≤ 250 cfu/g" || !e.Failed() {
		t.Errorf("configured limit: %+v", e)
	}
	r.EnteroCFU = 12.5
	tests, _ = testsOf(r)
	if e := tests[1]; e.Result != "12.5 cfu/g" || !e.Passed() {
		t.Errorf("fractional count: %+v", e)
	}
}

func TestOtherTests(t *testing.T) {
	raw := `[
		{"name":"Total viable count","result":12000,"unit":"cfu/g","limit":500000,"pass":true},
		{"name":"Campylobacter","result":"Not detected","unit":"","limit":"Not detected in 25 g","pass":true},
		{"name":"Clostridium perfringens","result":"<10","unit":"cfu/g","limit":"≤ 5000 cfu/g","pass":null},
		{"name":"Aw","result":0.98,"unit":"","limit":null},
		{"name":"","result":"ignored"}
	]`
	got, err := otherTests(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `[{"name":"Total viable count","result":"12000 cfu/g","limit":"≤ 500000 cfu/g","pass":true},` +
		`{"name":"Campylobacter","result":"Not detected","limit":"Not detected in 25 g","pass":true},` +
		`{"name":"Clostridium perfringens","result":"\u003c10 cfu/g","limit":"≤ 5000 cfu/g","pass":null},` +
		`{"name":"Aw","result":"0.98","limit":"","pass":null}]`
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	for _, empty := range []string{"", "null", "  "} {
		if got, err := otherTests(empty); err != nil || len(got) != 0 {
			t.Errorf("%q: %v %v", empty, got, err)
		}
	}
	if _, err := otherTests(`{"name":"not a list"}`); err == nil {
		t.Error("malformed other_tests accepted")
	}
}

func TestStorageLine(t *testing.T) {
	cases := []struct {
		line   string
		lo, hi sql.NullFloat64
		want   string
	}{
		{"Keep frozen", sql.NullFloat64{}, sql.NullFloat64{}, "Keep frozen"},
		{"", sql.NullFloat64{Float64: -25, Valid: true}, sql.NullFloat64{Float64: -18, Valid: true}, "Store between -25 °C and -18 °C"},
		{"", sql.NullFloat64{Float64: 0, Valid: true}, sql.NullFloat64{Float64: -18, Valid: true}, "Keep frozen at -18 °C or below"},
		{"", sql.NullFloat64{Float64: 0, Valid: true}, sql.NullFloat64{Float64: 0, Valid: true}, ""},
	}
	for _, c := range cases {
		if got := storageLine(proofRow{StorageLine: c.line, StorageMinC: c.lo, StorageMaxC: c.hi}); got != c.want {
			t.Errorf("%+v: %q, want %q", c, got, c.want)
		}
	}
}

// TestViewJSONHasNoInternalFields checks that the internal references of a lookup
// never reach the JSON: they live beside the View, not in it.
func TestViewJSONHasNoInternalFields(t *testing.T) {
	r := releasedRow()
	v, err := buildView(r, "Protocol Raw", "0123456789abcdef0123", london)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(BatchProof{View: v, BatchID: r.BatchID, LabResultID: r.LabResultID, ReportFile: r.ReportFile}.View)
	for _, internal := range []string{r.BatchID, r.LabResultID, r.ReportFile} {
		if strings.Contains(string(b), internal) {
			t.Errorf("JSON shows %q: %s", internal, b)
		}
	}
}
