package benchmark

import (
	"fmt"
	"time"
)

// FeatureReport holds the figures measured in this process rather than through a
// child: the email outbox, the monitoring checks and FEFO allocation as the database
// grows, and label PDFs.
type FeatureReport struct {
	// Emails and Labels are 0 when not measured.
	Emails       int
	EmailsPerSec float64
	Labels       int
	LabelsPerSec float64
	CheckSizes   []int
	Checks       map[int][]CheckTiming
	// AllocationSizes are historical order counts; Allocations orders allocated per
	// second at each.
	AllocationSizes []int
	Allocations     map[int]float64
	Errors          []string
}

// MeasureFeatures runs each measurement; one that fails is reported, not fatal.
// outboxAndLabels false skips the email drain and the label PDFs.
func MeasureFeatures(progress func(string, ...any), outboxAndLabels bool, checkSizes, allocationSizes []int) FeatureReport {
	r := FeatureReport{CheckSizes: checkSizes, Checks: map[int][]CheckTiming{}, AllocationSizes: allocationSizes,
		Allocations: map[int]float64{}}
	note := func(what string, err error) {
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", what, err))
		}
	}
	var err error
	if outboxAndLabels {
		r.Emails = 1000
		progress("outbox: draining %d emails to a local SMTP server", r.Emails)
		r.EmailsPerSec, err = MeasureEmailDrain(r.Emails)
		note("email drain", err)
	}
	for _, n := range checkSizes {
		progress("checks: %s orders and inbox rows", thousands(float64(n)))
		started := time.Now()
		r.Checks[n], err = MeasureChecks(n)
		note(fmt.Sprintf("checks at %d rows", n), err)
		progress("checks: %s rows done in %s", short(n), secs(time.Since(started)))
	}
	if outboxAndLabels {
		r.Labels = 200
		progress("labels: %d label PDFs", r.Labels)
		r.LabelsPerSec, err = MeasureLabelPDFs(r.Labels)
		note("labels", err)
	}
	for _, n := range allocationSizes {
		progress("allocation: 10,000 batches, 1M historical allocations, %s historical orders", thousands(float64(n)))
		r.Allocations[n], err = MeasureAllocations(n)
		note(fmt.Sprintf("allocation at %d orders", n), err)
	}
	return r
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
