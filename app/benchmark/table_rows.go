package benchmark

import (
	"fmt"
	"strings"
	"time"
)

// The table's rows, a group per area. Each row is area, metric, value, ceiling or
// target, ratio or verdict; a figure measured on several database sizes lists them in
// its value ("empty: …, 10k: …, 1M: …") and its verdict is the worst one's.

func (r Results) ingestionRows() [][]string {
	in := r.Ingestion
	o, t, l, e := in.Options, in.Throughput, in.Latency, in.EmptyHandler
	ceiling := in.Ceiling.PerSecond()
	conns := fmt.Sprintf("%d connections", o.Concurrency)
	paced := fmt.Sprintf("%d/s", o.Rate)
	return [][]string{
		{"ingestion", "plain SQLite inserts of the same payloads (ceiling)", perSec(ceiling, "rows/s"), "1 tx per row, WAL, sync=NORMAL", ""},
		{"HTTP", "empty handler at " + conns + " (ceiling): GET " + emptyHandlerRoute + ", same child and router",
			perSec(e.PerSecond(), "req/s") + ", p50 / p99 " + ms(e.Closed.P50) + " / " + ms(e.Closed.P99), "same client and connections", ""},
		{"HTTP", "empty handler (ceiling) at " + paced + " open loop", "p50 / p99 " + ms(e.Open.P50) + " / " + ms(e.Open.P99), "same client and rate", ""},
		{"ingestion", "deliveries fully processed/s", perSec(t.ProcessedPerSecond(), "/s"), "SQLite ceiling " + perSec(ceiling, "/s"), ratio(t.ProcessedPerSecond(), ceiling)},
		{"ingestion", "deliveries fully processed/s", perSec(t.ProcessedPerSecond(), "/s"), fmt.Sprintf("target >= %s/s", thousands(TargetProcessedPerSecond)),
			verdict(t.ProcessedPerSecond()/TargetProcessedPerSecond, t.ProcessedPerSecond() >= TargetProcessedPerSecond)},
		{"ingestion", "deliveries answered (stored)/s at " + conns, perSec(t.AnsweredPerSecond(), "/s"), "SQLite ceiling " + perSec(ceiling, "/s"), ratio(t.AnsweredPerSecond(), ceiling)},
		{"ingestion", "deliveries answered (stored)/s at " + conns, perSec(t.AnsweredPerSecond(), "/s"), "empty handler " + perSec(e.PerSecond(), "/s"), ratio(t.AnsweredPerSecond(), e.PerSecond())},
		{"ingestion", "answer p50 / p99 at " + conns, ms(t.P50) + " / " + ms(t.P99), "empty handler p99 " + ms(e.Closed.P99), "p99 " + ratio(float64(t.P99), float64(e.Closed.P99))},
		{"ingestion", "answer p50 / p99 at " + paced, ms(l.P50) + " / " + ms(l.P99), "target p99 < " + ms(TargetAnswerP99),
			verdict(float64(l.P99)/float64(TargetAnswerP99), l.P99 < TargetAnswerP99 && l.Sent > 0)},
		{"ingestion", "answer p50 / p99 at " + paced, ms(l.P50) + " / " + ms(l.P99), "empty handler p99 " + ms(e.Open.P99), "p99 " + ratio(float64(l.P99), float64(e.Open.P99))},
		{"ingestion", "answer max at " + paced, ms(l.Max), "", ""},
		{"ingestion", "commit to processed p50 / p99 / max at " + conns, ms(t.LagP50) + " / " + ms(t.LagP99) + " / " + ms(t.LagMax), "from webhook_inbox times", ""},
		{"ingestion", "commit to processed p50 / p99 / max at " + paced, ms(l.LagP50) + " / " + ms(l.LagP99) + " / " + ms(l.LagMax), "", ""},
	}
}

// sized is one database size's figure.
type sized struct {
	label string
	value float64
}

// curve lists figures by size ("empty: 864/s, 10k: 850/s") with render, and returns
// the worst (by worse) and the last against the first.
func curve(points []sized, render func(float64) string, worse func(a, b float64) bool) (text string, worst, lastToFirst float64) {
	var cells []string
	for i, p := range points {
		cells = append(cells, p.label+": "+render(p.value))
		if i == 0 || worse(p.value, worst) {
			worst = p.value
		}
	}
	if len(points) > 1 && points[0].value > 0 {
		lastToFirst = points[len(points)-1].value / points[0].value
	}
	return strings.Join(cells, ", "), worst, lastToFirst
}

func lower(a, b float64) bool  { return a < b }
func higher(a, b float64) bool { return a > b }

// growth is ", 1M/empty 0.91": how the figure moved from the smallest database to the largest.
func growth(points []sized, lastToFirst float64) string {
	if len(points) < 2 {
		return ""
	}
	return fmt.Sprintf("; %s/%s %.2f", points[len(points)-1].label, points[0].label, lastToFirst)
}

// emptyAndCurve is one figure of the empty database's run and of each curve point.
func (r Results) emptyAndCurve(empty float64, of func(CurvePoint) float64) []sized {
	out := []sized{{"empty", empty}}
	for _, p := range r.Curve {
		out = append(out, sized{short(p.Orders), of(p)})
	}
	return out
}

func (r Results) ingestionCurveRows() [][]string {
	if len(r.Curve) == 0 {
		return nil
	}
	in := r.Ingestion
	processed := r.emptyAndCurve(in.Throughput.ProcessedPerSecond(), func(p CurvePoint) float64 { return p.Throughput.ProcessedPerSecond() })
	text, worst, g := curve(processed, func(v float64) string { return perSec(v, "/s") }, lower)
	p99 := r.emptyAndCurve(float64(in.Latency.P99), func(p CurvePoint) float64 { return float64(p.Latency.P99) })
	p99Text, p99Worst, p99Growth := curve(p99, func(v float64) string { return ms(time.Duration(v)) }, higher)
	return [][]string{
		{"ingestion", "deliveries fully processed/s by orders already stored", text, fmt.Sprintf("target >= %s/s", thousands(TargetProcessedPerSecond)),
			verdict(worst/TargetProcessedPerSecond, worst >= TargetProcessedPerSecond) + growth(processed, g)},
		{"ingestion", fmt.Sprintf("answer p99 at %d/s by orders already stored", in.Options.Rate), p99Text, "target p99 < " + ms(TargetAnswerP99),
			verdict(p99Worst/float64(TargetAnswerP99), time.Duration(p99Worst) < TargetAnswerP99) + growth(p99, p99Growth)},
	}
}

func (r Results) proofRows() [][]string {
	if len(r.Curve) == 0 {
		return nil
	}
	var cells []string
	var worst time.Duration
	for _, p := range r.Curve {
		cells = append(cells, fmt.Sprintf("%s (%s batches): %s / %s", short(p.Orders), thousands(float64(p.Batches)), ms(p.Proof.P50), ms(p.Proof.P99)))
		worst = max(worst, p.Proof.P99)
	}
	e := r.Ingestion.EmptyHandler.Open
	return [][]string{
		{"proof page", fmt.Sprintf("GET /proof/<id> p50 / p99 at %d/s open loop by orders stored", r.Ingestion.Options.Rate),
			strings.Join(cells, ", "), "empty handler p99 " + ms(e.P99) + " (issue 4 names no number)", "worst p99 " + ratio(float64(worst), float64(e.P99))},
	}
}

func (r Results) allocationRows() [][]string {
	f := r.Features
	var points []sized
	for _, n := range f.AllocationSizes {
		if v := f.Allocations[n]; v > 0 {
			points = append(points, sized{short(n), v})
		}
	}
	if len(points) == 0 {
		return nil
	}
	text, _, g := curve(points, func(v float64) string { return perSec(v, "/s") }, lower)
	verdictText := ""
	if len(points) > 1 {
		verdictText = fmt.Sprintf("%s/%s %.2f", points[len(points)-1].label, points[0].label, g)
	}
	return [][]string{{"allocation", "orders allocated FEFO (10k batches, 1M allocations) by historical orders", text, "flat as orders grow", verdictText}}
}

func (r Results) checkRows() [][]string {
	f := r.Features
	if len(f.CheckSizes) == 0 {
		return nil
	}
	var rows [][]string
	for _, first := range f.Checks[f.CheckSizes[0]] {
		var points []sized
		for _, n := range f.CheckSizes {
			for _, c := range f.Checks[n] {
				if c.Check == first.Check {
					points = append(points, sized{short(n), float64(c.Median)})
				}
			}
		}
		text, worst, _ := curve(points, func(v float64) string { return ms(time.Duration(v)) }, higher)
		rows = append(rows, []string{"monitoring", "check " + first.Check + " (median of 5) by orders/inbox rows", text,
			"target < " + ms(TargetCheck), verdict(worst/float64(TargetCheck), time.Duration(worst) < TargetCheck)})
	}
	return rows
}

func (r Results) resourceRows() [][]string {
	in := r.Ingestion
	starts := r.emptyAndCurve(float64(in.ColdStart), func(p CurvePoint) float64 { return float64(p.ColdStart) })
	startText, startWorst, _ := curve(starts, func(v float64) string { return secs(time.Duration(v)) }, higher)
	idle := r.emptyAndCurve(float64(in.Memory.Idle), func(p CurvePoint) float64 { return float64(p.Memory.Idle) })
	idleText, _, _ := curve(idle, func(v float64) string { return megabytes(int64(v)) }, higher)
	after := r.emptyAndCurve(float64(in.Memory.AfterLoad), func(p CurvePoint) float64 { return float64(p.Memory.AfterLoad) })
	afterText, _, _ := curve(after, func(v float64) string { return megabytes(int64(v)) }, higher)
	peak := r.emptyAndCurve(float64(in.Memory.Peak), func(p CurvePoint) float64 { return float64(p.Memory.Peak) })
	peakText, peakWorst, _ := curve(peak, func(v float64) string { return megabytes(int64(v)) }, higher)
	by := ""
	if len(r.Curve) > 0 {
		by = " by orders stored"
	}
	return [][]string{
		{"start-up", fmt.Sprintf("cold start: exec of serve to /api/health 200 (median of %d, page cache warm)%s", coldStartRuns, by), startText,
			"target < " + secs(TargetColdStart), verdict(startWorst/float64(TargetColdStart), time.Duration(startWorst) < TargetColdStart)},
		{"memory", "resident memory idle (VmRSS once started)" + by, idleText, "", ""},
		{"memory", "resident memory under load (VmHWM: peak over the load)" + by, peakText,
			"target < " + megabytes(TargetRSS), verdict(peakWorst/TargetRSS, peakWorst > 0 && peakWorst < TargetRSS)},
		{"memory", "resident memory once the load is over (VmRSS)" + by, afterText, "", ""},
		{"binary", "size of the executable (" + runtimeTarget() + ")", megabytes(r.BinarySize), "", ""},
	}
}

func (r Results) arm64Rows() [][]string {
	a := r.Arm64
	if a.NotMeasured != "" {
		return [][]string{{"arm64", "linux/arm64 binary under qemu-user", "not measured: " + a.NotMeasured, "", ""}}
	}
	return [][]string{
		{"arm64", "binary size (linux/arm64)", megabytes(a.Size), "", ""},
		{"arm64", "start-up under qemu-user: exec to /api/health 200 on a migrated data dir", secs(a.Startup),
			"target < " + secs(TargetColdStart) + " is for real hardware", "no verdict: emulated"},
		{"arm64", fmt.Sprintf("resident memory of qemu + opspine idle / under load (%d deliveries, 4 connections; VmHWM)", a.Deliveries),
			megabytes(a.Memory.Idle) + " / " + megabytes(a.Memory.Peak), "target < " + megabytes(TargetRSS),
			verdict(float64(a.Memory.Peak)/TargetRSS, a.Memory.Peak > 0 && a.Memory.Peak < TargetRSS)},
		{"arm64", fmt.Sprintf("%d deliveries answered 200 and processed under qemu-user", a.Deliveries), secs(a.Took), "", ""},
	}
}

func (r Results) outboxAndLabelRows() [][]string {
	f := r.Features
	var rows [][]string
	if f.Emails > 0 {
		rows = append(rows, []string{"outbox", fmt.Sprintf("emails drained to a local SMTP server (%d, 40 KB PDF each)", f.Emails), perSec(f.EmailsPerSec, "/s"), "no target named", ""})
	}
	if f.Labels > 0 {
		rows = append(rows, []string{"labels", "label PDFs (QR + PDF) generated", perSec(f.LabelsPerSec, "/s"), "no target named", ""})
	}
	return rows
}

// megabytes is b in MB (10^6 bytes), as the memory target is written.
func megabytes(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
}
