package batches_test

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"

	"github.com/opspine/opspine/app/batches"
)

func TestSafeCSVCellDefusesFormulas(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+44": "'+44", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx",
		"Ada": "Ada", "": "", "a=b": "a=b",
	} {
		if got := batches.SafeCSVCell(in); got != want {
			t.Errorf("SafeCSVCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTraceCSVHasAHeaderAndDatesInBusinessTime(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatalf("no time zone data: %v", err)
	}
	var buf bytes.Buffer
	rows := []batches.TraceRow{{BatchCode: "B-260701-001", OrderNumber: "PR-1", OrderDate: time.Date(2026, 6, 30, 23, 30, 0, 0, time.UTC),
		CustomerName: "-Bob", CustomerEmail: "bob@example.com", SKU: "RAW-1", Quantity: 4, AllocationStatus: "dispatched"}}
	if err := batches.WriteTraceCSV(&buf, rows, london); err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(got) != 2 {
		t.Fatalf("%q %v", got, err)
	}
	want := []string{"B-260701-001", "PR-1", "2026-07-01", "'-Bob", "bob@example.com", "RAW-1", "4", "dispatched"}
	for i := range want {
		if got[1][i] != want[i] {
			t.Errorf("cell %d (%s) = %q, want %q", i, got[0][i], got[1][i], want[i])
		}
	}
}
