package benchmark

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildOpspine builds the module's binary into a temp dir, as `make build` would.
func buildOpspine(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	exe := filepath.Join(t.TempDir(), "opspine")
	build := exec.Command("go", "build", "-trimpath", "-o", exe, ".") // -trimpath: shares make build's compile cache
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// A tiny run end to end against the real binary: every delivery is answered 200 and
// ends processed, and the table has its rows. No figure is asserted.
func TestBenchRunsEndToEnd(t *testing.T) {
	exe := buildOpspine(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the run's own temp dir goes here, so the test sees it removed
	opts := Options{Exe: exe, Warmup: 10, Deliveries: 50, Concurrency: 4, Rate: 50, Duration: time.Second,
		SettleTimeout: 20 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if problems := rep.Problems(); len(problems) > 0 {
		t.Fatalf("delivery problems: %v", problems)
	}
	for name, p := range map[string]struct {
		phase Phase
		want  int
	}{"throughput": {rep.Throughput, 50}, "latency": {rep.Latency, 50}} {
		if p.phase.Sent != p.want || p.phase.OK != p.want {
			t.Errorf("%s: sent %d, answered 200 %d; want %d each", name, p.phase.Sent, p.phase.OK, p.want)
		}
		if p.phase.Inbox.Processed != p.want || p.phase.Inbox.Pending != 0 {
			t.Errorf("%s: %d processed, %d pending; want %d processed", name, p.phase.Inbox.Processed, p.phase.Inbox.Pending, p.want)
		}
	}
	if rep.Ceiling.Rows != 50 {
		t.Errorf("ceiling inserted %d rows, want 50", rep.Ceiling.Rows)
	}
	table := rep.Table()
	for _, row := range []string{
		"plain SQLite inserts (ceiling)",
		"deliveries fully processed/s",
		"target >= 1,000/s",
		"answer p50 / p99 at 4 connections",
		"answer p50 / p99 at 50/s",
		"target p99 < 50.0 ms",
		"machine: ",
		"payload: ",
		"every delivery was answered 200 and ended processed",
	} {
		if !strings.Contains(table, row) {
			t.Errorf("table has no %q:\n%s", row, table)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the run left %d entries in its temp dir, e.g. %s", len(left), left[0].Name())
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p99 of 3", ms(1, 2, 3), 99, 3 * time.Millisecond},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
