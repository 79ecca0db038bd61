package proof

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opspine/opspine/app/settings"
)

// EnterobacteriaceaeLimitKey is the `config` row holding the Enterobacteriaceae limit
// in cfu/g that the release rule applies. When no row has it the page shows the
// registered setting's default, or DefaultEnterobacteriaceaeLimit when the setting is
// not registered.
const EnterobacteriaceaeLimitKey = "lab_enterobacteriaceae_max_cfu_per_g"

// Limits shown to customers, from EU Regulation 142/2011 Annex XIII for raw pet food.
const (
	DefaultEnterobacteriaceaeLimit = 300.0
	SalmonellaLimit                = "Absent in 25 g"
	ListeriaLimit                  = "Absent in 25 g"
)

var enterobacteriaceaeDefault = sync.OnceValue(func() float64 {
	for _, s := range settings.All() {
		if s.Key == EnterobacteriaceaeLimitKey {
			return s.Default
		}
	}
	return DefaultEnterobacteriaceaeLimit
})

// ReportPath is where a batch's lab report is downloaded: no record ids, only the public id.
func ReportPath(publicID string) string { return "/proof/" + publicID + "/report.pdf" }

// buildView turns the row into what the customer sees.
func buildView(r proofRow, brand, publicID string, loc *time.Location) (View, error) {
	v := View{
		Brand:      brand,
		PublicID:   publicID,
		BatchCode:  r.Code,
		Product:    r.ProductName,
		Storage:    storageLine(r),
		Status:     r.Status,
		ProducedOn: dayIn(r.ProducedAt, loc),
		UseBy:      dayIn(r.ExpiryDate, loc),
		Tests:      []Test{},
	}
	v.Verdict, v.Headline, v.Message = verdictOf(r.Status, brand)
	// results are shown once the batch is decided; on hold they may be incomplete
	if v.Verdict == VerdictAwaiting || r.LabResultID == "" {
		return v, nil
	}
	v.Lab = r.Lab
	v.ReportedOn = dayIn(r.ReportedAt, loc)
	var err error
	if v.Tests, err = testsOf(r); err != nil {
		return View{}, err
	}
	if r.Status == "released" && r.ReportFile != "" {
		v.ReportURL = ReportPath(publicID)
	}
	return v, nil
}

// verdictOf gives the verdict, headline and message for a batch status. An unknown
// status is never shown as safe.
func verdictOf(status, brand string) (Verdict, string, string) {
	switch status {
	case "released":
		return VerdictPass, "PASS",
			"This batch passed every lab test below and was released for sale."
	case "failed":
		return VerdictFail, "FAIL",
			"This batch did not pass its lab tests and was not released for sale. If you have a pouch from it, do not feed it: contact " + brand + " for a replacement."
	case "recalled":
		return VerdictRecalled, "RECALLED",
			"Do not feed this product. This batch has been recalled: stop feeding it now, keep the pouch, and contact " + brand + " for a refund or replacement."
	default:
		return VerdictAwaiting, "AWAITING RESULTS",
			"This batch is on hold while an independent laboratory tests it. It is not sold until every test has passed. Check back soon."
	}
}

// storageLine is the product's storage instructions, or a line made from its temperatures.
func storageLine(r proofRow) string {
	if s := strings.TrimSpace(r.StorageLine); s != "" {
		return s
	}
	lo, hi := r.StorageMinC, r.StorageMaxC
	switch {
	case lo.Valid && hi.Valid && (lo.Float64 != 0 || hi.Float64 != 0) && lo.Float64 < hi.Float64:
		return fmt.Sprintf("Store between %s °C and %s °C", number(lo.Float64), number(hi.Float64))
	case hi.Valid && hi.Float64 < 0:
		return fmt.Sprintf("Keep frozen at %s °C or below", number(hi.Float64))
	}
	return ""
}

// testsOf lists the lab result's tests: the pathogens the regulation names first, then
// whatever else the lab reported.
func testsOf(r proofRow) ([]Test, error) {
	tests := []Test{}
	if r.Salmonella != "" {
		tests = append(tests, presenceTest("Salmonella", r.Salmonella, SalmonellaLimit))
	}
	if r.EnteroTested {
		limit := enterobacteriaceaeDefault()
		if r.EnteroLimitCfg.Valid {
			limit = r.EnteroLimitCfg.Float64
		}
		tests = append(tests, Test{
			Name:   "Enterobacteriaceae",
			Result: number(r.EnteroCFU) + " cfu/g",
			Limit:  "≤ " + number(limit) + " cfu/g",
			Pass:   boolPtr(r.EnteroCFU <= limit),
		})
	}
	if r.Listeria != "" {
		tests = append(tests, presenceTest("Listeria monocytogenes", r.Listeria, ListeriaLimit))
	}
	others, err := otherTests(r.OtherTests)
	if err != nil {
		return nil, err
	}
	return append(tests, others...), nil
}

func presenceTest(name, found, limit string) Test {
	result := "Detected"
	if found == "absent" {
		result = "Absent"
	}
	return Test{Name: name, Result: result, Limit: limit, Pass: boolPtr(found == "absent")}
}

// otherTest is one entry of lab_results.other_tests as staff or the lab parser write it;
// result and limit may be numbers or text.
type otherTest struct {
	Name   string `json:"name"`
	Result any    `json:"result"`
	Unit   string `json:"unit"`
	Limit  any    `json:"limit"`
	Pass   *bool  `json:"pass"`
}

func otherTests(raw string) ([]Test, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "null" {
		return nil, nil
	}
	var list []otherTest
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		return nil, fmt.Errorf("read other_tests: %w", err)
	}
	out := make([]Test, 0, len(list))
	for _, t := range list {
		if strings.TrimSpace(t.Name) == "" {
			continue
		}
		out = append(out, Test{
			Name:   t.Name,
			Result: withUnit(valueText(t.Result), t.Unit),
			Limit:  limitText(t.Limit, t.Unit),
			Pass:   t.Pass,
		})
	}
	return out, nil
}

// limitText shows a numeric limit as a maximum ("≤ 10 cfu/g") and a text limit as written.
func limitText(limit any, unit string) string {
	if f, ok := limit.(float64); ok {
		return withUnit("≤ "+number(f), unit)
	}
	return valueText(limit)
}

func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(x)
	case float64:
		return number(x)
	case bool:
		if x {
			return "Yes"
		}
		return "No"
	default:
		return fmt.Sprint(x)
	}
}

// withUnit appends unit to a numeric value; text values already say what they mean.
func withUnit(value, unit string) string {
	unit = strings.TrimSpace(unit)
	if value == "" || unit == "" {
		return value
	}
	if _, err := strconv.ParseFloat(strings.TrimLeft(value, "≤<>≥ "), 64); err != nil {
		return value
	}
	return value + " " + unit
}

// number prints f without a trailing .0 and without float noise.
func number(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func boolPtr(b bool) *bool { return &b }
