package hooks_test

import (
	"strings"
	"testing"
	"time"

	"github.com/opspine/opspine/app/testkit"
)

func runLabCheck(t *testing.T, s *testkit.Server, name string) (outcome, summary string) {
	t.Helper()
	run, err := s.Spine.Scheduler.RunNow("monitor-"+name, "manual")
	if err != nil {
		t.Fatalf("run monitor-%s: %v", name, err)
	}
	return run.Outcome, run.Summary
}

// TestLabMonitorChecks: lab-sla warns once a batch has waited longer than lab_sla_days;
// lab-ingestion-health warns while an email is quarantined and is critical when the
// mailbox has not been read for three intervals; working-capital-on-hold reports units
// and kg on hold and says there is no value without a unit cost.
func TestLabMonitorChecks(t *testing.T) {
	s, addr := startWithLabMailbox(t)
	labBatch(t, s, "B-261117-030") // on hold since t0 - 3 days

	if outcome, summary := runLabCheck(t, s, "lab-sla"); outcome != "ok" {
		t.Errorf("lab-sla after 3 days: %s %s", outcome, summary)
	}
	if outcome, summary := runLabCheck(t, s, "working-capital-on-hold"); outcome != "ok" || !strings.Contains(summary, "500 units") || !strings.Contains(summary, "no unit cost") {
		t.Errorf("working-capital-on-hold: %s %s", outcome, summary)
	}
	if outcome, summary := runLabCheck(t, s, "lab-ingestion-health"); outcome != "ok" {
		t.Errorf("lab-ingestion-health with nothing quarantined: %s %s", outcome, summary)
	}

	deliverLabEmail(t, addr, "Lab <lab@foodlab.example>", labReportPDF(t, []string{"Hello, no results here"}))
	runLabPoll(t, s)
	if outcome, summary := runLabCheck(t, s, "lab-ingestion-health"); outcome != "warning" || !strings.Contains(summary, "1 lab emails quarantined") {
		t.Errorf("lab-ingestion-health with a quarantined email: %s %s", outcome, summary)
	}

	s.Clock.Advance(3 * 24 * time.Hour)
	if outcome, summary := runLabCheck(t, s, "lab-sla"); outcome != "warning" || !strings.Contains(summary, "B-261117-030") {
		t.Errorf("lab-sla after 6 days: %s %s", outcome, summary)
	}
	if outcome, summary := runLabCheck(t, s, "lab-ingestion-health"); outcome != "critical" || !strings.Contains(summary, "not been read successfully") {
		t.Errorf("lab-ingestion-health three days after the last poll: %s %s", outcome, summary)
	}
}
