package benchmark

import (
	"fmt"
	"strings"
	"time"
)

// FeatureReport holds the figures of everything besides webhook ingestion: the email
// outbox, the monitoring checks as the database grows, labels and the proof page.
type FeatureReport struct {
	Emails       int
	EmailsPerSec float64
	CheckSizes   []int
	Checks       map[int][]CheckTiming
	Labels       int
	LabelsPerSec float64
	ProofRate    int
	ProofP50     time.Duration
	ProofP99     time.Duration
	// Allocations is orders allocated per second by historical order count.
	Allocations map[int]float64
	Errors      []string
}

// MeasureFeatures runs each measurement; one that fails is reported, not fatal.
func MeasureFeatures(progress func(string), sizes []int) FeatureReport {
	r := FeatureReport{Emails: 1000, CheckSizes: sizes, Checks: map[int][]CheckTiming{}, Labels: 200, ProofRate: 200,
		Allocations: map[int]float64{}}
	note := func(what string, err error) {
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", what, err))
		}
	}
	progress(fmt.Sprintf("outbox: draining %d emails to a local SMTP server", r.Emails))
	var err error
	r.EmailsPerSec, err = MeasureEmailDrain(r.Emails)
	note("email drain", err)
	for _, n := range sizes {
		progress(fmt.Sprintf("checks: %s orders and inbox rows", thousands(float64(n))))
		r.Checks[n], err = MeasureChecks(n)
		note(fmt.Sprintf("checks at %d rows", n), err)
	}
	progress(fmt.Sprintf("labels: %d label PDFs", r.Labels))
	r.LabelsPerSec, err = MeasureLabelPDFs(r.Labels)
	note("labels", err)
	for _, n := range []int{10_000, 1_000_000} {
		progress(fmt.Sprintf("allocation: 10,000 batches, 1M historical allocations, %s historical orders", thousands(float64(n))))
		r.Allocations[n], err = MeasureAllocations(n)
		note(fmt.Sprintf("allocation at %d orders", n), err)
	}
	progress(fmt.Sprintf("proof page: %d requests/s for 10s", r.ProofRate))
	r.ProofP50, r.ProofP99, err = MeasureProofPage(r.ProofRate, 10*time.Second)
	note("proof page", err)
	return r
}

// Table renders the figures beside their targets.
func (r FeatureReport) Table() string {
	var b strings.Builder
	rows := [][]string{{"metric", "value", "target", "verdict"}}
	rows = append(rows, []string{fmt.Sprintf("emails drained to a local SMTP server (%d, 40 KB PDF each)", r.Emails), perSec(r.EmailsPerSec, "/s"), "", ""})
	var names []string
	if len(r.CheckSizes) > 0 {
		for _, c := range r.Checks[r.CheckSizes[0]] {
			names = append(names, c.Check)
		}
	}
	for _, name := range names {
		var cells []string
		worst := time.Duration(0)
		for _, n := range r.CheckSizes {
			for _, c := range r.Checks[n] {
				if c.Check == name {
					cells = append(cells, fmt.Sprintf("%s: %s", short(n), ms(c.Median)))
					worst = max(worst, c.Median)
				}
			}
		}
		rows = append(rows, []string{"check " + name + " (median of 5) by orders/inbox rows", strings.Join(cells, ", "),
			"< " + ms(TargetCheck), verdict(float64(worst)/float64(TargetCheck), worst < TargetCheck)})
	}
	rows = append(rows, []string{"label PDFs (QR + PDF) generated", perSec(r.LabelsPerSec, "/s"), "", ""})
	if small, large := r.Allocations[10_000], r.Allocations[1_000_000]; small > 0 && large > 0 {
		rows = append(rows, []string{"orders allocated FEFO (10k batches, 1M allocations) at 10k / 1M orders",
			perSec(small, "/s") + " / " + perSec(large, "/s"), "flat as orders grow", fmt.Sprintf("%.2f", large/small)})
	}
	rows = append(rows, []string{fmt.Sprintf("proof page p50 / p99 at %d requests/s", r.ProofRate), ms(r.ProofP50) + " / " + ms(r.ProofP99), "", ""})
	writeTable(&b, rows)
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "FAILED: %s\n", e)
	}
	return b.String()
}

func short(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	default:
		return fmt.Sprint(n)
	}
}
