package labmail

import (
	"fmt"
	"strings"

	"github.com/pocketbase/pocketbase/core"
)

// LoadPatterns returns the active lab_pdf_patterns rows, or BuiltinPatterns when there
// is none.
func LoadPatterns(app core.App) ([]Pattern, error) {
	recs, err := app.FindRecordsByFilter(CollectionPatterns, "active = true", "created", 0, 0)
	if err != nil {
		return nil, fmt.Errorf("labmail: read lab_pdf_patterns: %w", err)
	}
	if len(recs) == 0 {
		return BuiltinPatterns(), nil
	}
	out := make([]Pattern, 0, len(recs))
	for _, r := range recs {
		out = append(out, PatternOf(r))
	}
	return out, nil
}

// PatternOf reads a lab_pdf_patterns record.
func PatternOf(r *core.Record) Pattern {
	return Pattern{
		ID:                   r.Id,
		LabName:              r.GetString("lab_name"),
		SenderMatch:          r.GetString("sender_match"),
		BatchCodeRegexp:      r.GetString("batch_code_regex"),
		SalmonellaRegexp:     r.GetString("salmonella_pattern"),
		ListeriaRegexp:       r.GetString("listeria_pattern"),
		EnterobacteriaRegexp: r.GetString("enterobacteriaceae_pattern"),
		Unit:                 r.GetString("unit"),
	}
}

// CheckPattern says what is wrong with a pattern staff entered, or nil.
func CheckPattern(p Pattern) error {
	if strings.TrimSpace(p.LabName) == "" {
		return fmt.Errorf("lab_name is required")
	}
	if strings.TrimSpace(p.SalmonellaRegexp) == "" && strings.TrimSpace(p.ListeriaRegexp) == "" && strings.TrimSpace(p.EnterobacteriaRegexp) == "" {
		return fmt.Errorf("give at least one test pattern (salmonella_pattern, listeria_pattern or enterobacteriaceae_pattern)")
	}
	_, err := compile(p)
	return err
}

// ParseWithPatterns parses text with each pattern that fits the sender (those whose
// sender_match is in from first, then the ones for any sender) and returns the most
// confident report; a report that names a batch code wins over one that does not.
func ParseWithPatterns(text, from string, patterns []Pattern) (Report, error) {
	from = strings.ToLower(from)
	var specific, general []Pattern
	for _, p := range patterns {
		m := strings.ToLower(strings.TrimSpace(p.SenderMatch))
		switch {
		case m == "":
			general = append(general, p)
		case strings.Contains(from, m):
			specific = append(specific, p)
		}
	}
	var best Report
	found := false
	var firstErr error
	for _, p := range append(specific, general...) {
		rep, err := ParseLabReport(text, p)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if !found || better(rep, best) {
			best, found = rep, true
		}
	}
	if !found {
		if firstErr != nil {
			return Report{}, firstErr
		}
		return Report{}, fmt.Errorf("no lab_pdf_patterns row fits the sender %q", from)
	}
	return best, nil
}

func better(a, b Report) bool {
	if (a.BatchCode() != "") != (b.BatchCode() != "") {
		return a.BatchCode() != ""
	}
	return a.Confidence > b.Confidence
}
