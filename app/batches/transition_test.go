package batches_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/opspine/opspine/app/batches"
)

func TestBatchLifecycleAllowsOnlyForwardMoves(t *testing.T) {
	all := []string{batches.StatusQAHold, batches.StatusReleased, batches.StatusFailed, batches.StatusRecalled}
	allowed := map[[2]string]bool{
		{"qa_hold", "released"}: true, {"qa_hold", "failed"}: true, {"qa_hold", "recalled"}: true,
		{"released", "recalled"}: true, {"failed", "recalled"}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := batches.CanTransition(from, to); got != allowed[[2]string{from, to}] {
				t.Errorf("CanTransition(%s, %s) = %v", from, to, got)
			}
		}
	}
	if next := batches.AllowedNext("released"); !slices.Equal(next, []string{"recalled"}) {
		t.Errorf("after released: %v", next)
	}
}

func TestTransitionErrorSaysWhatIsAllowed(t *testing.T) {
	err := error(&batches.TransitionError{Code: "B-261120-001", From: "failed", To: "released"})
	if err.Error() != "batch B-261120-001 is failed: it can become recalled, not released" {
		t.Errorf("message %q", err)
	}
	if !errors.Is(err, batches.ErrTransitionNotAllowed) {
		t.Error("not an ErrTransitionNotAllowed")
	}
	final := &batches.TransitionError{Code: "B-1", From: "recalled", To: "released"}
	if final.Error() != "batch B-1 is recalled, which is final: it cannot become released" {
		t.Errorf("message %q", final)
	}
	hold := &batches.TransitionError{Code: "B-2", From: "qa_hold", To: "qa_hold"}
	if hold.Error() != "batch B-2 is qa_hold: it can become released or failed or recalled, not qa_hold" {
		t.Errorf("message %q", hold)
	}
}
