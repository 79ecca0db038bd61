package benchmark

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// A tiny run end to end against the real binary, with one small cost-curve step and
// the checks: every delivery is answered 200 and ends processed, every proof page and
// empty-handler request is answered 200, and the one table has its rows, ceilings and
// verdicts. No figure is asserted.
func TestBenchRunsEndToEnd(t *testing.T) {
	exe := buildOpspine(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the run's own temp dirs go here, so the test sees them removed
	opts := Options{Exe: exe, Warmup: 10, Deliveries: 50, Concurrency: 4, Rate: 50, Duration: time.Second,
		SettleTimeout: 20 * time.Second, Progress: progressLog{t}}
	plan := Plan{CurveOrders: []int{2000}, CheckRows: []int{2000}}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := Run(ctx, opts, plan)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if problems := res.Problems(); len(problems) > 0 {
		t.Fatalf("delivery problems: %v", problems)
	}
	if len(res.Failed) > 0 || len(res.Curve) != 1 {
		t.Fatalf("failed: %v; %d curve points, want 1", res.Failed, len(res.Curve))
	}
	rep, point := res.Ingestion, res.Curve[0]
	for name, p := range map[string]struct {
		phase Phase
		want  int
	}{"throughput": {rep.Throughput, 50}, "latency": {rep.Latency, 50},
		"throughput on 2k orders": {point.Throughput, 50}, "latency on 2k orders": {point.Latency, 50}} {
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
	if e := rep.EmptyHandler; e.Closed.OK != 50 || e.Open.OK != 50 {
		t.Errorf("empty handler: %d and %d answered 200, want 50 each", e.Closed.OK, e.Open.OK)
	}
	if point.Proof.OK != 50 || point.Batches != 20 {
		t.Errorf("proof pages: %d answered 200 over %d batches, want 50 over 20", point.Proof.OK, point.Batches)
	}
	if rep.ColdStart <= 0 || point.ColdStart <= 0 || rep.Memory.Peak <= 0 || point.Memory.Idle <= 0 || res.BinarySize <= 0 {
		t.Errorf("cold start %s / %s, memory %+v / %+v, binary %d bytes: want each measured",
			rep.ColdStart, point.ColdStart, rep.Memory, point.Memory, res.BinarySize)
	}
	table := res.Table()
	for _, want := range []struct{ row, last string }{
		{"plain SQLite inserts of the same payloads (ceiling)", ""},
		{"empty handler at 4 connections (ceiling): GET /api/health, same child and router", ""},
		{"SQLite ceiling", `^\d+\.\d\d$`},
		{"target >= 1,000/s", `^\d+\.\d\d \((met|MISSED)\)$`},
		{"answered (stored)/s at 4 connections | ", ""},
		{"/s | empty handler ", `^\d+\.\d\d$`},
		{"| empty handler p99 ", `^p99 \d+\.\d\d$`},
		{"answer p50 / p99 at 50/s", ""},
		{"target p99 < 50.0 ms", `^\d+\.\d\d \((met|MISSED)\)`},
		{"deliveries fully processed/s by orders already stored | empty: ", `; 2k/empty \d+\.\d\d$`},
		{"GET /proof/<id> p50 / p99 at 50/s open loop by orders stored | 2k (20 batches): ", `^worst p99 \d+\.\d\d$`},
		{"cold start: exec of serve to /api/health 200", `^\d+\.\d\d \((met|MISSED)\)$`},
		{"resident memory under load", `^\d+\.\d\d \((met|MISSED)\)$`},
		{"target < 150.0 MB", ""},
		{"size of the executable", ""},
		{"check order-ingestion-slo (median of 5) by orders/inbox rows | 2k: ", `^\d+\.\d\d \((met|MISSED)\)$`},
		{"linux/arm64 binary under qemu-user | not measured: ", ""},
		{"machine: ", ""},
		{"payload: ", ""},
		{"every delivery was answered 200 and ended processed", ""},
		{"the whole bench took ", ""},
	} {
		line := lineWith(table, want.row)
		if line == "" {
			t.Errorf("table has no %q:\n%s", want.row, table)
			continue
		}
		cells := strings.Split(line, " | ")
		if last := strings.TrimSpace(cells[len(cells)-1]); want.last != "" && !regexp.MustCompile(want.last).MatchString(last) {
			t.Errorf("row %q ends %q, want %s", want.row, last, want.last)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the run left %d entries in its temp dir, e.g. %s", len(left), left[0].Name())
	}
}

// progressLog logs the run's progress lines with the test's.
type progressLog struct{ t *testing.T }

func (p progressLog) Write(b []byte) (int, error) {
	p.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// lineWith is the first line of s holding sub, with its cells' padding squeezed to
// single spaces around the separators ("" when none does).
func lineWith(s, sub string) string {
	for _, line := range strings.Split(s, "\n") {
		squeezed := regexp.MustCompile(` +\| +`).ReplaceAllString(line, " | ")
		if strings.Contains(squeezed, sub) {
			return squeezed
		}
	}
	return ""
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
