// Package benchmark is `opspine bench`: Shopify ingestion measured end to end (signed
// deliveries over HTTP on loopback into a real `opspine serve` child process) beside the
// ceilings measured in the same run (plain SQLite inserts of the same payloads, an empty
// handler on the same child), then the cost curves as the database grows (ingestion, the
// proof page, allocation, monitoring checks), memory, cold start and the arm64 binary
// under qemu, in one table beside the issues' targets. Figures are reported, never
// asserted.
package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/opspine/opspine/app/ingest"
)

// Options say how much load each phase sends.
type Options struct {
	// Exe is the opspine binary to run as the server; empty is this executable.
	Exe string
	// Warmup deliveries are sent and processed before the clock starts.
	Warmup int
	// Deliveries are sent as fast as Concurrency connections allow (throughput phase).
	Deliveries  int
	Concurrency int
	// Rate deliveries per second for Duration are sent open-loop (latency phase).
	Rate     int
	Duration time.Duration
	// SettleTimeout bounds the wait for the last delivery of a phase to be processed.
	SettleTimeout time.Duration
	// KeepDir leaves the temp dir (data, server log) in place.
	KeepDir bool
	// Progress receives one line per step; nil is silent.
	Progress io.Writer
}

// DefaultOptions are `make bench`'s.
func DefaultOptions() Options {
	return Options{Warmup: 200, Deliveries: 5000, Concurrency: 16, Rate: 200, Duration: 10 * time.Second,
		SettleTimeout: 3 * time.Minute}
}

// Phase is one phase's answers and what became of the deliveries.
type Phase struct {
	Answers
	// Elapsed is from the first send until nothing was pending; Answered until the last answer.
	Elapsed  time.Duration
	Answered time.Duration
	// Delta of webhook_inbox by status over the phase.
	Inbox inboxCounts
	// Lag is how long after its commit each delivery's processing finished: p50, p99, max,
	// and how many waited longer than the retry job's grace (the live queue was full).
	LagP50, LagP99, LagMax time.Duration
	LaterThanGrace         int
	// ServerCPU and ClientCPU are the CPU time the server and this bench used over the
	// phase (-1 when unknown): both share the machine's cores.
	ServerCPU, ClientCPU time.Duration
	// MachineCPU is the CPU time every process on the machine used over the phase.
	MachineCPU time.Duration
}

// ProcessedPerSecond is deliveries fully processed per second of the phase.
func (p Phase) ProcessedPerSecond() float64 { return rate(p.Inbox.Processed, p.Elapsed) }

// AnsweredPerSecond is deliveries answered per second while sending.
func (p Phase) AnsweredPerSecond() float64 { return rate(p.Sent, p.Answered) }

// Report is everything one run measured.
type Report struct {
	Options Options
	// CPUBusy is the share of all CPUs busy in the second before the run (-1 if unknown).
	CPUBusy    float64
	Payload    PayloadSize
	Ceiling    CeilingResult
	Throughput Phase
	Latency    Phase
	// EmptyHandler is the HTTP overhead ceiling: the same load on a near-empty route.
	EmptyHandler EmptyHandler
	// Memory is the server's resident memory idle and under the phases' load.
	Memory Memory
	// ColdStart is the median time from exec to a healthy /api/health on a fresh data dir.
	ColdStart time.Duration
}

// PayloadSize describes the order payloads sent.
type PayloadSize struct{ Min, Mean, Max int }

func sizeOf(ds []delivery) PayloadSize {
	if len(ds) == 0 {
		return PayloadSize{}
	}
	s := PayloadSize{Min: len(ds[0].body)}
	total := 0
	for _, d := range ds {
		n := len(d.body)
		total += n
		s.Min, s.Max = min(s.Min, n), max(s.Max, n)
	}
	s.Mean = total / len(ds)
	return s
}

// Problems lists every delivery that was not answered 200 or did not end processed.
// Speed is never a problem here: it is printed beside its target, not asserted.
func (r Report) Problems() []string { return phaseProblems(r.Throughput, r.Latency) }

// phaseProblems lists the deliveries of a throughput and a latency phase that were not
// answered 200 or did not end processed.
func phaseProblems(throughput, latency Phase) []string {
	var out []string
	check := func(name string, p Phase) {
		if p.OK != p.Sent {
			out = append(out, fmt.Sprintf("%s: %d of %d deliveries answered 200 (other statuses %v, %d transport errors, last: %s)",
				name, p.OK, p.Sent, p.Other, p.Errors, p.LastError))
		}
		if p.Inbox.Processed != p.Sent || p.Inbox.Pending != 0 || p.Inbox.Failed != 0 || p.Inbox.Dead != 0 || p.Inbox.Skipped != 0 {
			out = append(out, fmt.Sprintf("%s: of %d deliveries %d processed, %d pending, %d failed, %d dead, %d skipped",
				name, p.Sent, p.Inbox.Processed, p.Inbox.Pending, p.Inbox.Failed, p.Inbox.Dead, p.Inbox.Skipped))
		}
	}
	check("throughput phase", throughput)
	check("latency phase", latency)
	return out
}

// Plan says what a run measures besides ingestion on an empty database.
type Plan struct {
	// IngestionOnly measures only ingestion on an empty database, with its ceilings,
	// memory and cold start; the other fields are then ignored.
	IngestionOnly bool
	// CurveOrders are the orders already stored for the cost curves of ingestion, the
	// proof page, memory and cold start.
	CurveOrders []int
	// CheckRows are the database sizes the monitoring checks are timed on.
	CheckRows []int
	// AllocationOrders are the historical order counts FEFO allocation is timed at.
	AllocationOrders []int
	// OutboxAndLabels measures the email drain and label PDFs.
	OutboxAndLabels bool
	// Arm64Exe is the linux/arm64 binary run under qemu-user ("" measures none).
	Arm64Exe string
}

// Results is everything one run measured.
type Results struct {
	Plan      Plan
	Ingestion Report
	Curve     []CurvePoint
	Features  FeatureReport
	Arm64     Arm64Result
	// BinarySize is the size of the server's executable.
	BinarySize int64
	// Took is the whole run's wall time.
	Took time.Duration
	// Failed lists measurements that could not be made (the others still were).
	Failed []string
}

// Problems lists every delivery of the run that was not answered 200 or did not end
// processed.
func (r Results) Problems() []string {
	out := r.Ingestion.Problems()
	for _, p := range r.Curve {
		for _, msg := range phaseProblems(p.Throughput, p.Latency) {
			out = append(out, short(p.Orders)+" orders stored: "+msg)
		}
	}
	return out
}

// Run measures ingestion on an empty database (the ceiling first, then a child server:
// warm-up, throughput and latency phases, the empty handler, memory, cold start), then
// what plan asks for. Temp dirs and servers are gone when it returns. It stops at the
// first error of the ingestion runs; a failed feature measurement is listed in Failed.
func Run(ctx context.Context, opts Options, plan Plan) (res Results, err error) {
	started := time.Now()
	defer func() { res.Took = time.Since(started) }()
	res.Plan = plan
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "bench: "+format+"\n", args...)
		}
	}
	exe := opts.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return res, fmt.Errorf("bench: find this executable: %w", err)
		}
	}
	if info, err := os.Stat(exe); err == nil {
		res.BinarySize = info.Size()
	}
	if opts.Deliveries < 1 || opts.Concurrency < 1 || opts.Rate < 1 || opts.Duration <= 0 || opts.Warmup < 0 {
		return res, errors.New("bench: deliveries, concurrency, rate and duration must be positive")
	}
	secret := "shpss_bench_" + randomHex(16)
	set := makeDeliverySet(randomHex(4), 0, opts, secret)
	progress("built %d signed order payloads", len(set.warm)+len(set.load)+len(set.paced))
	res.Arm64.NotMeasured = "not asked for (--ingestion-only, or --arm64-exe none)"
	if res.Ingestion, err = runEmpty(ctx, opts, exe, secret, set, progress); err != nil || plan.IngestionOnly {
		return res, err
	}
	for _, n := range plan.CurveOrders {
		p, err := measureCurvePoint(ctx, opts, exe, secret, set, n, progress)
		res.Curve = append(res.Curve, p)
		if err != nil {
			return res, err
		}
	}
	res.Features = MeasureFeatures(progress, plan.OutboxAndLabels, plan.CheckRows, plan.AllocationOrders)
	res.Failed = append(res.Failed, res.Features.Errors...)
	if plan.Arm64Exe != "" {
		res.Arm64, err = MeasureArm64(ctx, plan.Arm64Exe, arm64Deliveries, progress)
		if err != nil {
			res.Failed = append(res.Failed, err.Error())
			res.Arm64.NotMeasured = "it failed (FAILED under the table)"
		}
	}
	return res, nil
}

// runEmpty measures the ceiling, then starts the server on a fresh data dir and runs
// warm-up, throughput and latency phases and the empty handler against it, then times
// the cold start on another fresh data dir.
func runEmpty(ctx context.Context, opts Options, exe, secret string, set deliverySet, progress func(string, ...any)) (rep Report, err error) {
	rep.Options = opts
	rep.CPUBusy = cpuBusy()
	dir, err := os.MkdirTemp("", "opspine-bench-")
	if err != nil {
		return rep, err
	}
	defer func() {
		if opts.KeepDir {
			progress("kept %s", dir)
			return
		}
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = rmErr
		}
	}()

	rep.Payload = sizeOf(set.load)

	progress("ceiling: %d plain SQLite inserts", len(set.load))
	if rep.Ceiling, err = measureCeiling(ctx, dir, payloadsOf(set.load)); err != nil {
		return rep, err
	}

	progress("starting %s serve", exe)
	srv, err := startChild(ctx, exe, dir, secret)
	if err != nil {
		return rep, fmt.Errorf("bench: %w", err)
	}
	defer func() {
		if stopErr := srv.stop(); stopErr != nil && err == nil {
			err = stopErr
		}
	}()
	rep.Memory.Idle, _ = vmRSS(srv.cmd.Process.Pid)
	if rep.Throughput, rep.Latency, err = runIngestion(ctx, srv, opts, set, progress); err != nil {
		return rep, err
	}
	progress("HTTP overhead: GET /api/health, %d requests from %d connections, then %d/s for %s", opts.Deliveries, opts.Concurrency, opts.Rate, opts.Duration)
	if rep.EmptyHandler, err = measureEmptyHandler(ctx, srv.base, opts); err != nil {
		return rep, err
	}
	rep.Memory.afterLoad(srv.cmd.Process.Pid)
	if err := srv.stop(); err != nil {
		return rep, err
	}

	progress("cold start: a fresh data dir, %d starts", coldStartRuns)
	if rep.ColdStart, err = coldStartOnHistory(ctx, exe, secret, 0); err != nil {
		return rep, err
	}
	return rep, nil
}

// deliverySet is one ingestion run's deliveries: warm-up, throughput and latency phases.
type deliverySet struct{ warm, load, paced []delivery }

// makeDeliverySet builds the deliveries of opts' phases, numbered from first.
func makeDeliverySet(runID string, first int, opts Options, secret string) deliverySet {
	latencyCount := opts.latencyRequests()
	return deliverySet{
		warm:  makeDeliveries(runID, first, opts.Warmup, secret),
		load:  makeDeliveries(runID, first+opts.Warmup, opts.Deliveries, secret),
		paced: makeDeliveries(runID, first+opts.Warmup+opts.Deliveries, latencyCount, secret),
	}
}

// latencyRequests is how many requests the latency phase sends.
func (o Options) latencyRequests() int { return max(o.Rate*int(o.Duration/time.Millisecond)/1000, 1) }

// runIngestion adds the deliveries' products to srv, then runs the warm-up, the
// throughput phase and the latency phase.
func runIngestion(ctx context.Context, srv *child, opts Options, set deliverySet, progress func(string, ...any)) (throughput, latency Phase, err error) {
	skus, err := skusOf(set.load)
	if err != nil {
		return throughput, latency, err
	}
	if err := srv.createProducts(ctx, skus); err != nil {
		return throughput, latency, fmt.Errorf("bench: %w", err)
	}
	before, err := srv.counts(ctx)
	if err != nil {
		return throughput, latency, err
	}
	if len(set.warm) > 0 {
		progress("warm-up: %d deliveries", len(set.warm))
		if _, err := runPhase(ctx, srv, &before, opts, func() *answers {
			return sendClosed(ctx, len(set.warm), opts.Concurrency, postEach(newClient(opts.Concurrency), srv.base, set.warm))
		}); err != nil {
			return throughput, latency, fmt.Errorf("bench: warm-up: %w", err)
		}
	}

	progress("throughput: %d deliveries from %d connections", len(set.load), opts.Concurrency)
	throughput, err = runPhase(ctx, srv, &before, opts, func() *answers {
		return sendClosed(ctx, len(set.load), opts.Concurrency, postEach(newClient(opts.Concurrency), srv.base, set.load))
	})
	if err != nil {
		return throughput, latency, fmt.Errorf("bench: throughput phase: %w", err)
	}

	progress("latency: %d deliveries/s for %s, open loop", opts.Rate, opts.Duration)
	latency, err = runPhase(ctx, srv, &before, opts, func() *answers {
		return sendOpen(ctx, len(set.paced), opts.Rate, postEach(newClient(64), srv.base, set.paced))
	})
	if err != nil {
		return throughput, latency, fmt.Errorf("bench: latency phase: %w", err)
	}
	return throughput, latency, nil
}

// runPhase sends, waits until nothing is pending and takes the inbox counts; before
// holds the counts at its start and is moved on to the counts at its end.
func runPhase(ctx context.Context, srv *child, before *inboxCounts, opts Options, send func() *answers) (Phase, error) {
	var p Phase
	server0, client0 := cpuTime(srv.cmd.Process.Pid), cpuTime(0)
	machine0, _ := machineCPU()
	start := time.Now()
	a := send()
	p.Answered = time.Since(start)
	p.Answers = a.summary()
	settled, settleErr := srv.waitSettled(ctx, a.lastID, opts.SettleTimeout)
	if settleErr != nil && !errors.Is(settleErr, errNotSettled) {
		return p, settleErr
	}
	p.Elapsed = settled.Sub(start)
	p.ServerCPU, p.ClientCPU, p.MachineCPU = -1, -1, -1
	if server1, client1 := cpuTime(srv.cmd.Process.Pid), cpuTime(0); server0 >= 0 && server1 >= 0 && client0 >= 0 && client1 >= 0 {
		p.ServerCPU, p.ClientCPU = server1-server0, client1-client0
	}
	if machine1, _ := machineCPU(); machine0 >= 0 && machine1 >= 0 {
		p.MachineCPU = machine1 - machine0
	}
	after, err := srv.counts(ctx)
	if err != nil {
		return p, err
	}
	p.Inbox = inboxCounts{
		Pending:   after.Pending,
		Processed: after.Processed - before.Processed,
		Failed:    after.Failed - before.Failed,
		Dead:      after.Dead - before.Dead,
		Skipped:   after.Skipped - before.Skipped,
	}
	*before = after
	lags, err := srv.lags(ctx, start.Truncate(time.Millisecond))
	if err != nil {
		return p, err
	}
	slices.Sort(lags)
	p.LagP50, p.LagP99 = percentile(lags, 50), percentile(lags, 99)
	if len(lags) > 0 {
		p.LagMax = lags[len(lags)-1]
	}
	for _, l := range lags {
		if l > ingest.PendingGrace {
			p.LaterThanGrace++
		}
	}
	return p, settleErr
}
