package batches

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pocketbase/dbx"

	"github.com/opspine/opspine/app/settings"
)

// The release rule's limits, tunable in `config`. Defaults follow EU Regulation
// 142/2011 Annex XIII for raw pet food: Salmonella absent in 25 g (not tunable: a
// detection always fails) and Enterobacteriaceae at most 300 cfu/g.
var (
	EnterobacteriaceaeMaxCFU = settings.Register(settings.Setting{
		Key: "lab_enterobacteriaceae_max_cfu_per_g", Default: 300, Unit: "cfu/g",
		Description: "Highest Enterobacteriaceae count (cfu/g) a batch may have and still be released. " +
			"Default 300, the limit for raw pet food in EU Regulation 142/2011 Annex XIII; a result above it fails the batch.",
	})
	RequireListeria = settings.Register(settings.Setting{
		Key: "lab_require_listeria", Default: 0, Unit: "0 or 1",
		Description: "1: a lab report must include Listeria monocytogenes (absent in 25 g) before a batch is released. " +
			"Default 0: EU Regulation 142/2011 Annex XIII sets no Listeria standard for raw pet food (Salmonella and " +
			"Enterobacteriaceae only). A Listeria detection fails the batch either way.",
	})
)

// Lab outcomes. An empty outcome means the report lacks a required test.
const (
	OutcomePass = "pass"
	OutcomeFail = "fail"
)

// Presence test results (Salmonella, Listeria): "" means not tested.
const (
	Absent   = "absent"
	Detected = "detected"
)

// Limits are the release rule's thresholds at one moment.
type Limits struct {
	EnterobacteriaceaeMaxCFU float64
	RequireListeria          bool
}

// CurrentLimits reads the limits from `config` (defaults when a row is missing).
func CurrentLimits(db dbx.Builder) Limits {
	return Limits{
		EnterobacteriaceaeMaxCFU: EnterobacteriaceaeMaxCFU.Value(db),
		RequireListeria:          RequireListeria.Value(db) >= 1,
	}
}

// Findings are what one lab report says about a batch.
type Findings struct {
	Salmonella               string      `json:"salmonella"`
	Listeria                 string      `json:"listeria"`
	EnterobacteriaceaeTested bool        `json:"enterobacteriaceae_tested"`
	EnterobacteriaceaeCFU    float64     `json:"enterobacteriaceae_cfu_per_g"`
	OtherTests               []OtherTest `json:"other_tests"`
}

// OtherTest is a further test on a report. Pass, when given, counts: false fails the batch.
type OtherTest struct {
	Name   string `json:"name"`
	Result any    `json:"result,omitempty"`
	Unit   string `json:"unit,omitempty"`
	Limit  any    `json:"limit,omitempty"`
	Pass   *bool  `json:"pass,omitempty"`
}

// Verdict is the release rule's decision on one report: pass, fail, or "" with the
// tests still missing. Reason says why in words staff read in the admin UI.
type Verdict struct {
	Outcome  string   `json:"outcome"`
	Reason   string   `json:"reason"`
	Failures []string `json:"failures,omitempty"`
	Missing  []string `json:"missing,omitempty"`
}

// EvaluateLabFindings is the release rule: any test present and out of limits fails;
// otherwise any required test missing leaves the outcome empty (a partial report does
// not release); otherwise it passes. Salmonella and Enterobacteriaceae are always
// required, Listeria when the limits say so.
func EvaluateLabFindings(f Findings, l Limits) Verdict {
	var v Verdict
	var passed []string
	switch f.Salmonella {
	case Detected:
		v.Failures = append(v.Failures, "Salmonella detected in 25 g (must be absent)")
	case Absent:
		passed = append(passed, "Salmonella absent in 25 g")
	default:
		v.Missing = append(v.Missing, "Salmonella")
	}
	switch {
	case !f.EnterobacteriaceaeTested:
		v.Missing = append(v.Missing, "Enterobacteriaceae")
	case f.EnterobacteriaceaeCFU > l.EnterobacteriaceaeMaxCFU:
		v.Failures = append(v.Failures, fmt.Sprintf("Enterobacteriaceae %s cfu/g is above the limit of %s cfu/g",
			number(f.EnterobacteriaceaeCFU), number(l.EnterobacteriaceaeMaxCFU)))
	default:
		passed = append(passed, fmt.Sprintf("Enterobacteriaceae %s cfu/g (limit %s cfu/g)",
			number(f.EnterobacteriaceaeCFU), number(l.EnterobacteriaceaeMaxCFU)))
	}
	switch f.Listeria {
	case Detected:
		v.Failures = append(v.Failures, "Listeria monocytogenes detected in 25 g (must be absent)")
	case Absent:
		passed = append(passed, "Listeria absent in 25 g")
	default:
		if l.RequireListeria {
			v.Missing = append(v.Missing, "Listeria (required by lab_require_listeria)")
		}
	}
	for _, t := range f.OtherTests {
		if t.Pass != nil && !*t.Pass {
			v.Failures = append(v.Failures, fmt.Sprintf("%s failed (result %s, limit %s)", t.Name, anyText(t.Result), anyText(t.Limit)))
		}
	}
	switch {
	case len(v.Failures) > 0:
		v.Outcome = OutcomeFail
		v.Reason = "Fail: " + strings.Join(v.Failures, "; ") + "."
	case len(v.Missing) > 0:
		v.Reason = "Incomplete: " + strings.Join(v.Missing, ", ") + " not tested. A partial report does not release the batch; enter the full results."
	default:
		v.Outcome = OutcomePass
		v.Reason = "Pass: " + strings.Join(passed, "; ") + "."
	}
	return v
}

// number prints a count without a needless ".0".
func number(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func anyText(v any) string {
	switch x := v.(type) {
	case nil:
		return "not given"
	case float64:
		return number(x)
	case string:
		if x == "" {
			return "not given"
		}
		return x
	}
	return fmt.Sprint(v)
}
