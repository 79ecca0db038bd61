package labmail

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/opspine/opspine/app/batches"
)

// Pattern is how one lab writes its reports (a lab_pdf_patterns row). The test
// patterns match the label of a test; the result is read from the rest of that line,
// or from the next line when the table put it there. A pattern with a capture group
// reads the result from the group instead.
type Pattern struct {
	ID      string
	LabName string
	// SenderMatch, when set, is a case-insensitive substring of the From address that
	// picks this pattern; an empty one is a fallback for any sender.
	SenderMatch          string
	BatchCodeRegexp      string
	SalmonellaRegexp     string
	ListeriaRegexp       string
	EnterobacteriaRegexp string
	// Unit is cfu_per_g (counts as written) or log10_cfu_per_g (counts given as log10).
	Unit string
}

// Units of a pattern's counts.
const (
	UnitCFUPerG      = "cfu_per_g"
	UnitLog10CFUPerG = "log10_cfu_per_g"
)

// DefaultBatchCodeRegexp matches opspine batch codes: PREFIX-YYMMDD-NNN.
const DefaultBatchCodeRegexp = `\b[A-Z0-9]{1,8}-\d{6}-\d{3}\b`

// BuiltinPatterns are the defaults seeded into lab_pdf_patterns and used when the
// collection has no active row: they read the usual wordings of UK food labs.
func BuiltinPatterns() []Pattern {
	return []Pattern{{
		LabName:              "Default (any lab)",
		BatchCodeRegexp:      DefaultBatchCodeRegexp,
		SalmonellaRegexp:     `(?i)\bsalmonella\b(?:\s+spp\.?)?`,
		ListeriaRegexp:       `(?i)\blisteria\b(?:\s+monocytogenes)?(?:\s+spp\.?)?`,
		EnterobacteriaRegexp: `(?i)\benterobacteri(?:aceae|a)\b(?:\s+count)?`,
		Unit:                 UnitCFUPerG,
	}}
}

// Report is what the parser read from a lab report's text.
type Report struct {
	Lab        string
	BatchCodes []string
	batches.Findings
	// Confidence is 0..1: the share of the pattern's tests read without doubt.
	Confidence float64
	// Problems say what could not be read, for the quarantine reason.
	Problems []string
}

// BatchCode is the single batch code of the report, or "" when there is none or several.
func (r Report) BatchCode() string {
	if len(r.BatchCodes) == 1 {
		return r.BatchCodes[0]
	}
	return ""
}

// compiled is a Pattern ready to run.
type compiled struct {
	p                   Pattern
	code, sal, lis, ent *regexp.Regexp
}

func compile(p Pattern) (*compiled, error) {
	c := &compiled{p: p}
	var err error
	re := func(name, expr string) *regexp.Regexp {
		if err != nil || strings.TrimSpace(expr) == "" {
			return nil
		}
		var r *regexp.Regexp
		if r, err = regexp.Compile(expr); err != nil {
			err = fmt.Errorf("pattern %q: %s: %w", p.LabName, name, err)
		}
		return r
	}
	if strings.TrimSpace(p.BatchCodeRegexp) == "" {
		p.BatchCodeRegexp = DefaultBatchCodeRegexp
	}
	c.code = re("batch_code_regex", p.BatchCodeRegexp)
	c.sal = re("salmonella_pattern", p.SalmonellaRegexp)
	c.lis = re("listeria_pattern", p.ListeriaRegexp)
	c.ent = re("enterobacteriaceae_pattern", p.EnterobacteriaRegexp)
	return c, err
}

// ParseLabReport reads a report's text with one pattern.
func ParseLabReport(text string, p Pattern) (Report, error) {
	c, err := compile(p)
	if err != nil {
		return Report{}, err
	}
	return c.parse(text), nil
}

func (c *compiled) parse(text string) Report {
	lines := splitLines(text)
	rep := Report{Lab: c.p.LabName}
	seen := map[string]bool{}
	for _, l := range lines {
		for _, m := range c.code.FindAllStringSubmatch(l, -1) {
			code := m[0]
			if len(m) > 1 && m[1] != "" {
				code = m[1]
			}
			// a staff pattern may match empty text ("(LOT-\d+)?"): that names no batch
			code = strings.ToUpper(strings.TrimSpace(code))
			if code != "" && !seen[code] {
				seen[code] = true
				rep.BatchCodes = append(rep.BatchCodes, code)
			}
		}
	}
	expected, read := 0, 0.0
	if c.sal != nil {
		expected++
		v, score, why := readPresence(lines, c.sal, []*regexp.Regexp{c.lis, c.ent})
		rep.Salmonella, read = v, read+score
		if why != "" {
			rep.Problems = append(rep.Problems, "Salmonella: "+why)
		}
	}
	if c.lis != nil {
		expected++
		v, score, why := readPresence(lines, c.lis, []*regexp.Regexp{c.sal, c.ent})
		rep.Listeria, read = v, read+score
		if why != "" {
			rep.Problems = append(rep.Problems, "Listeria: "+why)
		}
	}
	if c.ent != nil {
		expected++
		v, ok, score, why := readCount(lines, c.ent, []*regexp.Regexp{c.sal, c.lis}, c.p.Unit)
		read += score
		if ok {
			rep.EnterobacteriaceaeTested, rep.EnterobacteriaceaeCFU = true, v
		}
		if why != "" {
			rep.Problems = append(rep.Problems, "Enterobacteriaceae: "+why)
		}
	}
	if expected > 0 {
		rep.Confidence = math.Round(read/float64(expected)*100) / 100
	}
	if len(rep.BatchCodes) == 0 {
		rep.Problems = append(rep.Problems, "no batch code found")
	} else if len(rep.BatchCodes) > 1 {
		rep.Problems = append(rep.Problems, "several batch codes: "+strings.Join(rep.BatchCodes, ", "))
	}
	return rep
}

var spaces = regexp.MustCompile(`[ \t\x{00a0}]+`)

func splitLines(text string) []string {
	raw := strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n")
	out := make([]string, 0, len(raw))
	for _, l := range raw {
		if l = strings.TrimSpace(spaces.ReplaceAllString(l, " ")); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// candidates returns, for every line the label matches, the text after the label on
// that line followed by the next line (a result wrapped into the next table row). A
// capture group in the label pattern gives the text directly.
func candidates(lines []string, label *regexp.Regexp, others []*regexp.Regexp) []string {
	var out []string
	for i, l := range lines {
		loc := label.FindStringSubmatchIndex(l)
		if loc == nil {
			continue
		}
		if len(loc) >= 4 && loc[2] >= 0 {
			out = append(out, l[loc[2]:loc[3]])
			continue
		}
		rest := strings.TrimSpace(l[loc[1]:])
		if i+1 < len(lines) && !matchesAny(lines[i+1], label, others) {
			rest += " \n " + lines[i+1]
		}
		out = append(out, rest)
	}
	return out
}

func matchesAny(s string, label *regexp.Regexp, others []*regexp.Regexp) bool {
	if label.MatchString(s) {
		return true
	}
	for _, o := range others {
		if o != nil && o.MatchString(s) {
			return true
		}
	}
	return false
}

var (
	notDetected = regexp.MustCompile(`(?i)\b(not\s+detected|n\.?\s?d\.?|absent|negative|neg\.?|none\s+detected|not\s+found)(\b|$)`)
	detected    = regexp.MustCompile(`(?i)\b(detected|present|positive|pos\.?)(\b|$)`)
)

// readPresence reads an absent/detected result: the first of the label's lines
// that says one of them. Lines that disagree lower the score.
func readPresence(lines []string, label *regexp.Regexp, others []*regexp.Regexp) (value string, score float64, problem string) {
	found := map[string]bool{}
	for _, c := range candidates(lines, label, others) {
		first, _, _ := strings.Cut(c, "\n")
		v := presenceOf(first)
		if v == "" {
			v = presenceOf(c)
		}
		if v != "" {
			found[v] = true
			if value == "" {
				value = v
			}
		}
	}
	switch {
	case len(found) == 0:
		return "", 0, "no result found"
	case len(found) > 1:
		return batches.Detected, 0.5, "the report says both absent and detected; read as detected"
	}
	return value, 1, ""
}

func presenceOf(s string) string {
	nd, d := notDetected.FindStringIndex(s), detected.FindStringIndex(s)
	switch {
	case nd != nil && (d == nil || nd[0] <= d[0] || d[0] >= nd[0] && d[1] <= nd[1]):
		return batches.Absent
	case d != nil:
		return batches.Detected
	}
	return ""
}

// count: "<10", "< 10", "1.2 x 10^2", "1.2×10²", "1.2E+02", "1,200", "120".
var countRe = regexp.MustCompile(`(?i)(<|&lt;|less\s+than|>)?\s*(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(?:(?:x|×|\*)\s*10\s*(?:\^|\*\*)?\s*([+-]?\d+|[⁰¹²³⁴⁵⁶⁷⁸⁹]+)|[eE]\s*([+-]?\d+))?`)

// readCount reads a count in cfu/g. "<10" reads as 10 (the detection limit: the most
// it can be), "Not detected" as 0.
func readCount(lines []string, label *regexp.Regexp, others []*regexp.Regexp, unit string) (float64, bool, float64, string) {
	var values []float64
	for _, c := range candidates(lines, label, others) {
		if v, ok := countOf(c, unit); ok {
			values = append(values, v)
		}
	}
	if len(values) == 0 {
		return 0, false, 0, "no count found"
	}
	for _, v := range values[1:] {
		if v != values[0] {
			return math.Max(values[0], v), true, 0.5, "the report gives different counts; read the highest"
		}
	}
	return values[0], true, 1, ""
}

// methodRef is a method or standard reference ("(ISO 21528-2)") whose digits are not a count.
var methodRef = regexp.MustCompile(`(?i)\([^)]*\)|\b(?:ISO|BS|EN|AOAC|NF)\b[\s\d:./-]*`)

func countOf(s, unit string) (float64, bool) {
	s = methodRef.ReplaceAllString(s, " ")
	first, _, _ := strings.Cut(s, "\n")
	for _, part := range []string{first, s} {
		if nd := notDetected.FindStringIndex(part); nd != nil {
			if m := countRe.FindStringIndex(part); m == nil || nd[0] < m[0] {
				return 0, true
			}
		}
		m := countRe.FindStringSubmatch(part)
		if m == nil {
			continue
		}
		v, ok := countValue(m)
		if !ok {
			continue
		}
		if unit == UnitLog10CFUPerG && m[3] == "" && m[4] == "" {
			if v > 15 { // the same bound as countValue's 1e15 cfu/g: not a count
				continue
			}
			v = math.Round(math.Pow(10, v))
		}
		return v, true
	}
	return 0, false
}

func countValue(m []string) (float64, bool) {
	mant, err := strconv.ParseFloat(strings.ReplaceAll(m[2], ",", ""), 64)
	if err != nil {
		return 0, false
	}
	exp := m[4]
	if m[3] != "" {
		exp = superscriptDigits(m[3])
	}
	if exp != "" {
		e, err := strconv.Atoi(exp)
		if err != nil || e > 15 || e < -15 {
			return 0, false
		}
		mant *= math.Pow(10, float64(e))
	}
	if math.IsInf(mant, 0) || math.IsNaN(mant) || mant < 0 || mant > 1e15 {
		return 0, false
	}
	return math.Round(mant*1000) / 1000, true
}

func superscriptDigits(s string) string {
	return strings.NewReplacer("⁰", "0", "¹", "1", "²", "2", "³", "3", "⁴", "4", "⁵", "5", "⁶", "6", "⁷", "7", "⁸", "8", "⁹", "9").Replace(s)
}
