package benchmark

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/opspine/opspine/app/ingest"
)

// Targets from the issues; the bench prints figures beside them and never fails on them.
const (
	TargetProcessedPerSecond = 1000
	TargetAnswerP99          = 50 * time.Millisecond
	// TargetRSS is resident memory under load, in bytes (150 MB).
	TargetRSS       = 150_000_000
	TargetColdStart = time.Second
)

// Table renders the results as one plain-text table (area, metric, value, ceiling or
// target, ratio or verdict) with the machine and the load above it and, below it, what
// became of every delivery, the CPU the phases used and how long the run took.
func (r Results) Table() string {
	var b strings.Builder
	in := r.Ingestion
	o := in.Options
	fmt.Fprintf(&b, "opspine bench: signed Shopify orders/create deliveries over HTTP on loopback into `opspine serve`, and the rest of opspine's work\n")
	fmt.Fprintf(&b, "machine: %d CPUs%s, %s/%s, %s\n", runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if in.CPUBusy >= 0 {
		busy := ""
		if in.CPUBusy > 0.10 {
			busy = " (WARNING: other processes were busy; these figures understate this machine)"
		}
		fmt.Fprintf(&b, "CPU busy in the second before the run: %.0f%%%s\n", 100*in.CPUBusy, busy)
	}
	fmt.Fprintf(&b, "payload: %s bytes mean (%s to %s), distinct order and customer per delivery\n",
		thousands(float64(in.Payload.Mean)), thousands(float64(in.Payload.Min)), thousands(float64(in.Payload.Max)))
	fmt.Fprintf(&b, "load: %d warm-up, then %d deliveries from %d keep-alive connections, then %d/s for %s open loop; the same on each database of the cost curve\n\n",
		o.Warmup, o.Deliveries, o.Concurrency, o.Rate, o.Duration)

	rows := [][]string{{"area", "metric", "value", "ceiling or target", "ratio / verdict"}}
	for _, group := range [][][]string{r.ingestionRows(), r.ingestionCurveRows(), r.proofRows(), r.allocationRows(), r.checkRows(),
		r.resourceRows(), r.arm64Rows(), r.outboxAndLabelRows()} {
		rows = append(rows, group...)
	}
	writeTable(&b, rows)

	fmt.Fprintln(&b)
	writePhases(&b, "empty database", in.Throughput, in.Latency)
	for _, p := range r.Curve {
		writePhases(&b, fmt.Sprintf("%s orders stored (history written in %s)", short(p.Orders), secs(p.Seeding)), p.Throughput, p.Latency)
	}
	if problems := r.Problems(); len(problems) > 0 {
		fmt.Fprintf(&b, "DELIVERY PROBLEMS:\n  %s\n", strings.Join(problems, "\n  "))
	} else {
		fmt.Fprintf(&b, "every delivery was answered 200 and ended processed\n")
	}
	for _, f := range r.Failed {
		fmt.Fprintf(&b, "FAILED: %s\n", f)
	}
	fmt.Fprintf(&b, "the whole bench took %s\n", r.Took.Round(time.Second))
	return b.String()
}

// writePhases writes what became of a throughput and a latency phase's deliveries and
// the CPU they used.
func writePhases(w io.Writer, name string, throughput, latency Phase) {
	for _, p := range []struct {
		name string
		ph   Phase
	}{{"throughput", throughput}, {"latency", latency}} {
		fmt.Fprintf(w, "%s, %s phase: %d sent, %d answered 200, %d other, %d transport errors; %d processed, %d pending, %d failed, %d dead, %d skipped; answered in %s, all processed %s after the first send\n",
			name, p.name, p.ph.Sent, p.ph.OK, otherCount(p.ph.Other), p.ph.Errors, p.ph.Inbox.Processed, p.ph.Inbox.Pending,
			p.ph.Inbox.Failed, p.ph.Inbox.Dead, p.ph.Inbox.Skipped, secs(p.ph.Answered), secs(p.ph.Elapsed))
		if p.ph.ServerCPU >= 0 && p.ph.Elapsed > 0 {
			cores := func(d time.Duration) float64 { return d.Seconds() / p.ph.Elapsed.Seconds() }
			others := ""
			if p.ph.MachineCPU >= 0 {
				rest := max(0, p.ph.MachineCPU-p.ph.ServerCPU-p.ph.ClientCPU)
				others = fmt.Sprintf(", other processes %.2f cores", cores(rest))
				if cores(rest) > 0.1 {
					others += " (WARNING: they competed with the server)"
				}
			}
			fmt.Fprintf(w, "  CPU over the phase (of %d cores): server %.2f, bench client %.2f%s\n",
				runtime.NumCPU(), cores(p.ph.ServerCPU), cores(p.ph.ClientCPU), others)
		}
		if p.ph.LaterThanGrace > 0 {
			fmt.Fprintf(w, "  %d of them waited over %s for processing: the live pipeline's queue was full, so the webhook-retry job took them\n",
				p.ph.LaterThanGrace, ingest.PendingGrace)
		}
	}
}

func writeTable(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	line := func(row []string) {
		cells := make([]string, len(row))
		for i, cell := range row {
			cells[i] = cell + strings.Repeat(" ", widths[i]-len([]rune(cell)))
		}
		fmt.Fprintln(w, strings.TrimRight(strings.Join(cells, " | "), " "))
	}
	line(rows[0])
	sep := make([]string, len(widths))
	for i, n := range widths {
		sep[i] = strings.Repeat("-", n)
	}
	fmt.Fprintln(w, strings.Join(sep, "-+-"))
	for _, row := range rows[1:] {
		line(row)
	}
}

func otherCount(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func ratio(v, of float64) string {
	if of <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/of)
}

func verdict(r float64, met bool) string {
	if met {
		return fmt.Sprintf("%.2f (met)", r)
	}
	return fmt.Sprintf("%.2f (MISSED)", r)
}

func perSec(v float64, unit string) string {
	if strings.HasPrefix(unit, "/") {
		return thousands(v) + unit
	}
	return thousands(v) + " " + unit
}

// thousands renders v rounded, with comma thousands separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// cpuBusy is the share of all CPUs busy over the next second, or -1: other processes'
// work slows every figure, so the table says how idle the machine was.
func cpuBusy() float64 {
	b0, t0 := machineCPU()
	time.Sleep(time.Second)
	b1, t1 := machineCPU()
	if b0 < 0 || b1 < 0 || t1 <= t0 {
		return -1
	}
	return float64(b1-b0) / float64(t1-t0)
}

// cpuModel is ", <model name>" from /proc/cpuinfo where there is one.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return " (" + strings.Join(strings.Fields(v), " ") + ")"
		}
	}
	return ""
}

// runtimeTarget is this build's GOOS/GOARCH.
func runtimeTarget() string { return runtime.GOOS + "/" + runtime.GOARCH }
